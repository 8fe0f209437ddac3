"""Security properties of the running stack: secrets never reach histories, logs or error
messages; revenue never reaches anything crew can see; magic links cannot be tampered with,
outlive their expiry or be replayed; the confirmation endpoint is rate-limited; the codec server
wants its token; pages carry a Content-Security-Policy; pinned dependencies have no known
vulnerabilities (when a vulnerability service can be reached)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from charters_dev.seed import set_service_key_hash
from charters_dev.stack import DevStack
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import History
from temporalio.client import Client, WorkflowHandle

from charters import contract, magic_links
from charters.actions import settled
from charters.activities.scc_lambda import HASH_VARIABLE, service_key_hash
from charters.codec import ENCODING, AesGcmCodec, codec_from_key_ring, load_keys
from charters.models import BookingResult, BookingStatus
from charters.settings import Settings
from charters.worker.wiring import AwsClients
from tests.conftest import Booker
from tests.support import booking_data, eventually, mail_for, scc_items

ROOT = Path(__file__).resolve().parents[1]
REVENUE = ("840.75", "289.41", "251.34", "201.34")
_ips = itertools.count(1)


def client_ip() -> str:
    """A client address of its own per use (TEST-NET-3), sent as X-Forwarded-For: uvicorn
    trusts it from 127.0.0.1, so rate-limit budgets of tests do not mix."""
    n = next(_ips)
    return f"203.0.113.{n % 250 + 1}" if n < 250 else f"198.51.100.{n % 250 + 1}"


async def http(method: str, url: str, ip: str | None = None, **kwargs: Any) -> httpx.Response:
    headers = {**kwargs.pop("headers", {}), "X-Forwarded-For": ip or client_ip()}
    async with httpx.AsyncClient(timeout=15) as web:
        return await web.request(method, url, headers=headers, **kwargs)


# ---- one booking, confirmed through its magic links --------------------------------------------


@dataclass
class Confirmed:
    ref: str
    slug: str
    handle: WorkflowHandle[Any, BookingResult]
    result: BookingResult
    links: dict[str, str]  # crew id -> magic link
    confirm_pages: dict[str, str]  # crew id -> the confirmation page's HTML before answering
    confirm_headers: dict[str, str]


CREW_EMAILS = {
    "captain-1": "captain@sailjada.com",
    "crew-1": "alex@sailjada.com",
    "crew-2": "jordan@sailjada.com",
}


async def crew_links(settings: Settings, ref: str) -> dict[str, str]:
    def found() -> dict[str, str]:
        links: dict[str, str] = {}
        for mail in mail_for(settings, ref):
            urls = mail.magic_links()
            for crew_id, address in CREW_EMAILS.items():
                if address in mail.to and "accept" in urls:
                    links[crew_id] = urls["accept"].split("?", 1)[0]
        return links if len(links) == len(CREW_EMAILS) else {}

    return await eventually(found, timeout=60, what=f"crew emails for {ref}")


@pytest.fixture(scope="module")
async def confirmed(booker: Booker, settings: Settings) -> Confirmed:
    from charters.starter.book import validate

    data = booking_data()
    ref = data["booking_ref"]
    handle = await booker.start(data)
    await booker.wait_stage(handle.id, "awaiting-crew")
    links = await crew_links(settings, ref)
    pages, headers = {}, {}
    for crew_id, link in links.items():
        page = await http("GET", link)
        assert page.status_code == 200, page.text
        pages[crew_id], headers = page.text, dict(page.headers)
    for link in links.values():
        answered = await http("POST", link, data={"decision": "accept"})
        assert answered.status_code == 200, answered.text
    result = await settled(handle, 90)
    assert result.outcome == "confirmed"
    return Confirmed(ref, validate(data).page_slug, handle, result, links, pages, headers)


async def signal_count(handle: WorkflowHandle[Any, Any]) -> int:
    count = 0
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            count += 1
    return count


# ---- (b) revenue never reaches crew ----------------------------------------------------------


def assert_no_revenue(what: str, text: str) -> None:
    leaked = [amount for amount in REVENUE if amount in text]
    assert not leaked, f"revenue {leaked} in {what}"


async def test_revenue_is_absent_from_every_crew_visible_artefact(
    confirmed: Confirmed, aws: AwsClients, settings: Settings
) -> None:
    items = scc_items(aws, settings, confirmed.ref)
    assert len(items) == 1
    assert_no_revenue("the SCC DynamoDB item", json.dumps(items[0], default=str))

    mails = mail_for(settings, confirmed.ref)
    crew_mails = [m for m in mails if not m.subject.startswith("Confirmed:")]
    assert sorted(r for m in crew_mails for r in m.to) == sorted(CREW_EMAILS.values())
    for mail in crew_mails:
        assert_no_revenue(f"crew email to {mail.to}", mail.subject + mail.body)
    summary = [m for m in mails if m.subject.startswith("Confirmed:")]
    assert len(summary) == 1 and summary[0].to == ["captain@sailjada.com"]
    assert "840.75" in summary[0].body and "289.41" in summary[0].body, "the scan would miss it"

    page = aws.s3.get_object(Bucket=settings.guest_bucket, Key=confirmed.result.guest_page_key)
    html = page["Body"].read().decode()
    assert confirmed.ref in html
    assert_no_revenue("the guest page object", html)

    for crew_id, page_html in confirmed.confirm_pages.items():
        assert "Sheraton Marina" in page_html
        assert_no_revenue(f"the confirmation page of {crew_id}", page_html)


# ---- (f) Content-Security-Policy -----------------------------------------------------------------


async def test_guest_page_and_confirmation_page_send_a_csp(
    confirmed: Confirmed, settings: Settings
) -> None:
    guest = await http("GET", f"http://127.0.0.1:{settings.edge_port}/g/{confirmed.slug}")
    assert guest.status_code == 200, guest.text
    csp = guest.headers.get("content-security-policy", "")
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp, csp
    assert_no_revenue("the guest page through the edge", guest.text)

    csp = {k.lower(): v for k, v in confirmed.confirm_headers.items()}.get(
        "content-security-policy", ""
    )
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp, csp
    # Error pages of the endpoint too.
    refused = await http("GET", f"{settings.confirm_base_url}/c/not-a-token")
    assert refused.status_code in (403, 404)
    assert "default-src 'none'" in refused.headers.get("content-security-policy", "")


# ---- (c) tampered, expired, replayed magic links -------------------------------------------------


def hmac_key(aws: AwsClients, settings: Settings) -> bytes:
    secret = aws.secretsmanager.get_secret_value(SecretId=settings.secret_magic_link_key)
    return str(secret["SecretString"]).encode()


def token_of(link: str) -> str:
    return link.rsplit("/", 1)[1]


async def test_tampered_magic_links_are_refused(
    confirmed: Confirmed, aws: AwsClients, settings: Settings
) -> None:
    link = confirmed.links["crew-1"]
    base, token = link.rsplit("/", 1)
    payload, mac = token.split(".")
    key = hmac_key(aws, settings)
    genuine = magic_links.verify(key, token, _now())
    # Another crew member in the payload, the signature kept.
    forged_payload = magic_links.sign(
        key, magic_links.MagicLink(genuine.workflow_id, "crew-2", genuine.expires_at)
    ).split(".")[0]
    variants = {
        "signature changed": f"{payload}.{mac[:4]}{'A' if mac[4] != 'A' else 'B'}{mac[5:]}",
        "payload swapped": f"{forged_payload}.{mac}",
        "last character": f"{payload}.{mac[:-1]}{'A' if mac[-1] != 'A' else 'Q'}",
        "signed with another key": magic_links.sign(
            b"not-the-key", magic_links.MagicLink(genuine.workflow_id, "crew-1", 2**40)
        ),
        "no signature": payload,
    }
    before = await signal_count(confirmed.handle)
    for what, bad in variants.items():
        for method, form in (("GET", None), ("POST", {"decision": "decline"})):
            response = await http(method, f"{base}/{bad}", data=form)
            assert response.status_code in (403, 404), (what, response.status_code)
            assert_no_secret_in(response.text, [key.decode()], f"the answer to a {what} link")
    assert await signal_count(confirmed.handle) == before


async def test_expired_magic_links_are_refused(
    confirmed: Confirmed, aws: AwsClients, settings: Settings
) -> None:
    key = hmac_key(aws, settings)
    expired = magic_links.sign(
        key,
        magic_links.MagicLink(confirmed.handle.id, "crew-1", int(time.time()) - 1, 1),
    )
    before = await signal_count(confirmed.handle)
    for method, form in (("GET", None), ("POST", {"decision": "decline"})):
        response = await http(method, f"{settings.confirm_base_url}/c/{expired}", data=form)
        assert response.status_code == 410, response.text  # Gone: the link expired
        assert "expired" in response.text
    assert await signal_count(confirmed.handle) == before


async def test_a_replayed_magic_link_does_not_change_the_answer(
    booker: Booker, settings: Settings
) -> None:
    data = booking_data()
    handle = await booker.start(data)
    done = False
    try:
        await booker.wait_stage(handle.id, "awaiting-crew")
        links = await crew_links(settings, data["booking_ref"])
        link = links["crew-1"]
        first = await http("POST", link, data={"decision": "accept"})
        assert first.status_code == 200 and "accepted" in first.text

        async def answer() -> str:
            status = await handle.query(contract.QUERY_STATUS, result_type=BookingStatus)
            return next(a.answer for a in status.crew if a.crew_id == "crew-1")

        deadline = time.monotonic() + 30
        while await answer() != "accepted":
            assert time.monotonic() < deadline, "the accept never arrived"
            await asyncio.sleep(0.2)
        signals = await signal_count(handle)

        replay = await http("POST", link, data={"decision": "decline"})
        assert replay.status_code == 200
        assert "accepted" in replay.text and 'value="decline"' not in replay.text
        await asyncio.sleep(1)
        assert await answer() == "accepted"
        assert await signal_count(handle) == signals
        await booker.answer_all(data["booking_ref"])
        done = (await settled(handle, 90)).outcome == "confirmed"
        assert done
    finally:
        if not done:
            await handle.terminate("test failed")


# ---- (d) rate limits of the confirmation endpoint ------------------------------------------------


async def test_the_eleventh_rapid_request_for_one_token_gets_429(
    confirmed: Confirmed, aws: AwsClients, settings: Settings
) -> None:
    # A genuine link nobody has opened yet (the emailed ones were used by the fixture).
    token = magic_links.sign(
        hmac_key(aws, settings),
        magic_links.MagicLink(confirmed.handle.id, "captain-1", int(time.time()) + 600, 1),
    )
    link = f"{settings.confirm_base_url}/c/{token}"
    ip = client_ip()
    answers = [(await http("GET", link, ip=ip)).status_code for _ in range(10)]
    assert answers == [200] * 10, answers
    eleventh = await http("GET", link, ip=ip)
    assert eleventh.status_code == 429, eleventh.text
    assert int(eleventh.headers["retry-after"]) >= 1
    assert "default-src 'none'" in eleventh.headers.get("content-security-policy", "")
    # The limit is the token's: another client gets no further with it, a POST neither.
    assert (await http("GET", link)).status_code == 429
    assert (await http("POST", link, data={"decision": "decline"})).status_code == 429


def test_sliding_window_limiter_slides_and_does_not_count_refusals() -> None:
    from charters.web.confirm_app import SlidingWindowLimiter

    now = [1000.0]
    limiter = SlidingWindowLimiter(3, 60.0, max_keys=4, clock=lambda: now[0])
    for _ in range(3):
        assert limiter.retry_after("a") == 0
        limiter.record("a")
        now[0] += 10
    assert limiter.retry_after("a") == pytest.approx(30.0)  # the first hit leaves at 1060
    now[0] += 29  # refused requests in between do not push the window
    assert limiter.retry_after("a") == pytest.approx(1.0)
    now[0] += 1
    assert limiter.retry_after("a") == 0
    assert limiter.retry_after("b") == 0  # keys are independent
    for key in "cdefgh":  # more keys than max_keys: the idle ones go first
        limiter.record(key)
    assert len(limiter._hits) <= 4


async def test_one_client_is_limited_to_sixty_requests_a_minute(settings: Settings) -> None:
    ip = client_ip()
    base = f"{settings.confirm_base_url}/c"
    async with httpx.AsyncClient(timeout=15, headers={"X-Forwarded-For": ip}) as web:
        codes = [(await web.get(f"{base}/guess-{i}")).status_code for i in range(60)]
        assert set(codes) <= {403, 404}, codes
        over = await web.get(f"{base}/guess-60")
    assert over.status_code == 429, over.text
    assert int(over.headers["retry-after"]) >= 1
    # Another client is not affected.
    assert (await http("GET", f"{base}/guess-61")).status_code in (403, 404)


# ---- (e) the codec server wants its token --------------------------------------------------------


async def test_codec_server_refuses_requests_without_its_token(settings: Settings) -> None:
    url = f"http://127.0.0.1:{settings.codec_port}/decode"
    body: dict[str, list[Any]] = {"payloads": []}
    assert settings.codec_auth_token is not None
    token = settings.codec_auth_token.get_secret_value()
    for headers in (
        {},
        {"Authorization": "Bearer wrong-token-wrong-token"},
        {"Authorization": token},  # not a bearer credential
        {"Authorization": f"Bearer {token[:-1]}"},
        {"Origin": "http://evil.example"},
    ):
        response = await http("POST", url, json=body, headers=headers)
        assert response.status_code == 401, (headers, response.status_code)
        assert token not in response.text
    good = await http("POST", url, json=body, headers={"Authorization": f"Bearer {token}"})
    assert good.status_code == 200, good.text


# ---- (a) secrets: never in history, logs or error messages ---------------------------------------


@dataclass
class Secrets:
    text: dict[str, str]  # name -> value
    raw: dict[str, bytes]  # name -> bytes that must not appear either (codec keys)

    def needles(self) -> dict[str, bytes]:
        return {**{k: v.encode() for k, v in self.text.items()}, **self.raw}


@pytest.fixture(scope="module")
def secrets(aws: AwsClients, settings: Settings) -> Secrets:
    def secret(name: str) -> str:
        return str(aws.secretsmanager.get_secret_value(SecretId=name)["SecretString"])

    scc_key = secret(settings.secret_scc_service_key)
    assert settings.codec_keys is not None and settings.codec_auth_token is not None
    ring = settings.codec_keys.get_secret_value()
    keys, _ = load_keys(ring)
    text = {
        "dashboard token": secret(settings.secret_dashboard_token),
        "SCC service key": scc_key,
        "magic-link HMAC key": secret(settings.secret_magic_link_key),
        "SERVICE_KEY_HASH": service_key_hash(scc_key),
        "codec key ring": ring,
        "codec auth token": settings.codec_auth_token.get_secret_value(),
    }
    for kid, key in keys.items():
        text[f"codec key {kid} (base64)"] = base64.b64encode(key).decode()
        text[f"codec key {kid} (base64url)"] = base64.urlsafe_b64encode(key).decode()
    raw = {f"codec key {kid} (bytes)": key for kid, key in keys.items()}
    assert all(len(v) >= 16 for v in text.values())
    return Secrets(text, raw)


def assert_no_secret_in(text: str | bytes, secrets: list[str] | Secrets, where: str) -> None:
    data = text.encode() if isinstance(text, str) else text
    needles = (
        secrets.needles()
        if isinstance(secrets, Secrets)
        else {f"secret {i}": s.encode() for i, s in enumerate(secrets)}
    )
    found = [name for name, value in needles.items() if value in data]
    assert not found, f"{', '.join(found)} found in {where}"


async def test_stand_in_rejections_do_not_echo_keys(
    secrets: Secrets, settings: Settings, aws: AwsClients
) -> None:
    scc_key = secrets.text["SCC service key"]
    token = secrets.text["dashboard token"]
    events = f"http://127.0.0.1:{settings.scc_port}/prod/events"
    body = {"booking_ref": "SEC0001", "external_ref": "security-probe"}
    header = settings.scc_service_key_header
    for headers in (
        {},
        {header: "wrong-key"},
        {header: scc_key.swapcase()},  # the key in the wrong case
        {"X-Service-Key": scc_key},  # the seeds' other header name
        {header.lower(): scc_key[:-1]},
    ):
        response = await http("POST", events, json=body, headers=headers)
        assert response.status_code in (401, 403), (headers.keys(), response.status_code)
        assert_no_secret_in(response.text + json.dumps(dict(response.headers)), secrets, "SCC")
    calendar = f"http://127.0.0.1:{settings.calendar_port}/calendar"
    for headers in ({}, {settings.dashboard_token_header: token.swapcase()}):
        response = await http("POST", calendar, json={"booking_ref": "SEC0001"}, headers=headers)
        assert response.status_code in (401, 403)
        assert_no_secret_in(response.text, secrets, "the calendar's answer")


async def test_a_rejected_scc_key_is_explained_without_the_key_or_its_hash(
    booker: Booker, aws: AwsClients, settings: Settings, secrets: Secrets
) -> None:
    """SERVICE_KEY_HASH set to a wrong value: the booking blocks and says why, and nothing it
    shows (status, details, search attributes) carries the key or either hash."""
    function = settings.scc_lambda_function
    config = aws.lambda_.get_function_configuration(FunctionName=function)
    variables = dict(config["Environment"]["Variables"])
    wrong = hashlib.sha256(b"not the key").hexdigest()
    aws.lambda_.update_function_configuration(
        FunctionName=function, Environment={"Variables": {**variables, HASH_VARIABLE: wrong}}
    )
    data = booking_data()
    try:
        handle = await booker.start(data)
        status = await booker.wait_blocked(handle.id, contract.BLOCKED_SCC_KEY_HASH)
        shown = status.model_dump_json() + str((await handle.describe()).raw_description)
        assert "mismatch" in (status.blocked_reason or ""), status.blocked_reason
        assert_no_secret_in(shown, secrets, "the blocked booking's status and description")
        assert wrong not in shown
    finally:
        set_service_key_hash(aws, settings, present=True)
    await booker.answer_all(data["booking_ref"])
    assert (await settled(handle, 90)).outcome == "confirmed"


def decrypt_all(message: Message, codec: AesGcmCodec) -> int:
    """Decrypts, in place, every encrypted Payload anywhere in `message`; returns how many."""
    if isinstance(message, Payload):
        if message.metadata.get("encoding") == ENCODING:
            message.CopyFrom(codec.decrypt(message))
            return 1
        return 0
    count = 0
    for field, value in message.ListFields():
        if field.type != FieldDescriptor.TYPE_MESSAGE:
            continue
        kind = field.message_type
        assert kind is not None
        if kind.GetOptions().map_entry:
            entry_value = kind.fields_by_name["value"]
            if entry_value.type == FieldDescriptor.TYPE_MESSAGE:
                count += sum(decrypt_all(value[k], codec) for k in value)
        elif field.is_repeated:
            count += sum(decrypt_all(item, codec) for item in value)
        else:
            count += decrypt_all(value, codec)
    return count


async def test_no_secret_in_any_history_or_log(
    client: Client, stack: DevStack, settings: Settings, secrets: Secrets
) -> None:
    """Runs last in this module: every workflow of the session so far, raw (encrypted as the
    server stores it) and decrypted with the codec, and every log file of the stack."""
    assert settings.codec_keys is not None
    codec = codec_from_key_ring(settings.codec_keys.get_secret_value())
    ids = [wf.id async for wf in client.list_workflows()]
    assert len(ids) >= 3, ids
    gate = asyncio.Semaphore(16)
    decrypted_total = 0
    plaintext_seen = False

    async def scan(workflow_id: str) -> None:
        nonlocal decrypted_total, plaintext_seen
        async with gate:
            history = await client.get_workflow_handle(workflow_id).fetch_history()
        raw = History(events=history.events)
        assert_no_secret_in(
            raw.SerializeToString(), secrets, f"the stored history of {workflow_id}"
        )
        decrypted_total += decrypt_all(raw, codec)
        clear = raw.SerializeToString()
        plaintext_seen = plaintext_seen or b"Sheraton Marina" in clear
        assert_no_secret_in(clear, secrets, f"the decrypted history of {workflow_id}")
        assert_no_secret_in(str(raw), secrets, f"the decrypted history of {workflow_id} (text)")

    await asyncio.gather(*(scan(i) for i in ids))
    assert decrypted_total > 0 and plaintext_seen, "nothing was decrypted: the scan proves nothing"

    logs = sorted(stack.log_dir.glob("*.log"))
    assert any(p.name == "worker.log" for p in logs), logs
    for path in logs:
        assert_no_secret_in(path.read_bytes(), secrets, f"log {path.name}")


# ---- (g) known vulnerabilities of the pinned dependencies ----------------------------------------


def pinned_requirements() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        reqs += extra
    return sorted({r for r in reqs if "==" in r})


def test_pinned_dependencies_have_no_known_vulnerabilities(tmp_path: Path) -> None:
    audit = shutil.which("pip-audit") or str(Path(sys.executable).parent / "pip-audit")
    if not Path(audit).exists():
        pytest.skip("pip-audit is not installed (dev extra)")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("\n".join(pinned_requirements()) + "\n")
    reasons = []
    for service in ("pypi", "osv"):
        try:
            run = subprocess.run(
                [audit, "-r", str(requirements), "--no-deps", "--disable-pip", "-s", service]
                + ["--progress-spinner", "off", "-f", "json", "--timeout", "20"],
                capture_output=True,
                text=True,
                timeout=240,
            )
        except subprocess.TimeoutExpired:
            reasons.append(f"{service}: timed out")
            continue
        try:
            report = json.loads(run.stdout)
        except json.JSONDecodeError:
            last = (run.stderr.strip().splitlines() or ["no output"])[-1]
            reasons.append(f"{service}: {last[:200]}")
            continue
        deps = report.get("dependencies", [])
        audited = [d for d in deps if "skip_reason" not in d]
        if not audited:
            first = deps[0].get("skip_reason", "") if deps else "no dependencies"
            reasons.append(f"{service}: nothing could be audited ({first[:120]})")
            continue
        vulnerable = {
            f"{d['name']}=={d['version']}": [v["id"] for v in d.get("vulns", [])]
            for d in audited
            if d.get("vulns")
        }
        skipped = [d["name"] for d in deps if "skip_reason" in d]
        print(f"\npip-audit ({service}): {len(audited)} audited, skipped {skipped}")
        assert not vulnerable, f"known vulnerabilities in pinned packages: {vulnerable}"
        return
    pytest.skip("no vulnerability service reachable for pip-audit: " + "; ".join(reasons))


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)
