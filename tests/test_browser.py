"""The guest page and the crew confirmation page in a real browser (Debian's headless Chromium,
driven by Playwright), on a phone viewport, against the running stack.

The guest page comes from the emulated bucket through the local CloudFront edge
(`devtools/charters_dev/edge.py`) at `/g/{slug}`, with the edge's Content-Security-Policy in force:
the photo upload runs the page's own script, asks the SCC stand-in for a presigned POST and
uploads straight to (moto's) S3. The edge's port of the CloudFront Function is checked here
against the JavaScript original, under Node, over the same URIs.

Screenshots go to `test-artifacts/`. Browser tests skip when /usr/bin/chromium is missing
(`make browser` installs it)."""

from __future__ import annotations

import asyncio
import json
import random
import re
import shutil
import struct
import subprocess
import time
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote
from zoneinfo import ZoneInfo

import httpx
import pytest
from charters_dev.edge import inline_hashes, rewrite

from charters import contract
from charters.models import BookingStatus
from charters.settings import Settings
from charters.worker.wiring import AwsClients
from tests.conftest import Booker
from tests.support import booking_data, eventually, mail_for, scc_items
from tests.test_cloudfront_function import FUNCTION, HARNESS, TABLE

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
    "locale": "en-US",
    # Not the charter's zone: the page must say Pacific time whatever the phone's zone is.
    "timezone_id": "Europe/Berlin",
}
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
REVENUE = ("840.75", "289.41")
CSP_PROBE = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI);
});
"""


# ---- the edge's rewrite rules == the CloudFront Function's ----------------------------------


def _uris() -> list[tuple[str, str]]:
    """(uri, raw query) pairs: the CloudFront Function's own table plus random near-misses."""
    pairs: list[tuple[str, str]] = []
    for _, case, _ in TABLE:
        raw = case.get("rawQueryString")
        if raw is None:
            raw = "&".join(
                f"{k}={v['value']}" if v["value"] != "" else k
                for k, v in case["querystring"].items()
                if "multiValue" not in v
            )
        pairs.append((case["uri"], raw))
    rng = random.Random(20261101)
    alphabet = "abzAZ09-_./%\n é"
    prefixes = ["/g/", "/g/", "/g/", "/g", "/G/", "/", "/gallery/", "/g//"]
    for _ in range(400):
        body = "".join(rng.choice(alphabet) for _ in range(rng.choice([0, 1, 2, 5, 63, 64, 65])))
        pairs.append((rng.choice(prefixes) + body, rng.choice(["", "a=1", "utm=x%20y&b"])))
    return pairs


def _js_outcome(result: dict[str, Any], uri: str) -> tuple[str, str | None]:
    if result.get("statusCode") == 404:
        return ("not_found", None)
    if result.get("statusCode") == 301:
        return ("redirect", result["headers"]["location"]["value"])
    assert "statusCode" not in result, result
    return ("forward", result["uri"])


def _py_outcome(uri: str, raw: str) -> tuple[str, str | None]:
    decision = rewrite(uri, raw)
    if decision.kind in ("origin", "pass"):
        return ("forward", decision.uri)
    if decision.kind == "redirect":
        return ("redirect", decision.location)
    return ("not_found", None)


def test_edge_rewrite_matches_cloudfront_function() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not on PATH: the CloudFront Function runs under Node")
    pairs = _uris()
    cases: list[dict[str, Any]] = [
        {"uri": uri, "querystring": {}, "rawQueryString": raw or None} for uri, raw in pairs
    ]
    proc = subprocess.run(
        [node, str(HARNESS), str(FUNCTION)],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    mismatches = []
    for (uri, raw), got in zip(pairs, results, strict=True):
        assert "error" not in got, got
        js, py = _js_outcome(got["result"], uri), _py_outcome(uri, raw)
        if js != py:
            mismatches.append((uri, raw, js, py))
    assert not mismatches, mismatches[:10]
    kinds = {_py_outcome(u, r)[0] for u, r in pairs}
    assert kinds == {"forward", "redirect", "not_found"}


def test_csp_hashes_every_inline_block() -> None:
    html = (
        "<style>b{}</style><script>one()</script><script src='/x.js'></script>"
        "<SCRIPT type='module'>two()</SCRIPT>"
    )
    scripts, styles = inline_hashes(html)
    assert len(scripts) == 2 and len(styles) == 1
    assert all(s.startswith("'sha256-") and s.endswith("='") for s in scripts + styles)


# ---- one booking for the module, awaiting its crew ----------------------------------------


@dataclass
class Booked:
    data: dict[str, Any]
    handle: Any
    status: BookingStatus

    @property
    def ref(self) -> str:
        return str(self.data["booking_ref"])

    @property
    def slug(self) -> str:
        assert self.status.charter is not None
        return self.status.charter.slug


@pytest.fixture(scope="module")
async def booked(booker: Booker) -> Booked:
    data = booking_data()
    handle = await booker.start(data)
    status = await booker.wait_stage(handle.id, "awaiting-crew")
    return Booked(data, handle, status)


def edge_url(settings: Settings, path: str) -> str:
    return f"http://127.0.0.1:{settings.edge_port}{path}"


# ---- the edge over plain HTTP ----------------------------------------------------------------


async def test_edge_serves_guest_page_from_bucket(booked: Booked, settings: Settings) -> None:
    async with httpx.AsyncClient(timeout=10, follow_redirects=False) as http:
        for path in (f"/g/{booked.slug}", f"/g/{booked.slug}/", f"/g/{booked.slug}?utm=x"):
            page = await http.get(edge_url(settings, path))
            assert page.status_code == 200, (path, page.text)
            assert page.headers["content-type"].startswith("text/html")
            assert booked.ref in page.text
            assert "via" in page.headers and "x-amz-cf-id" in page.headers
            assert page.headers["x-content-type-options"] == "nosniff"
            csp = page.headers["content-security-policy"]
            assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
            assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
            assert re.search(r"script-src 'sha256-[A-Za-z0-9+/]{43}='", csp), csp
            for amount in REVENUE:
                assert amount not in page.text

        upper = await http.get(edge_url(settings, f"/g/{booked.slug.upper()}?utm=a%20b"))
        assert upper.status_code == 301
        assert upper.headers["location"] == f"/g/{booked.slug}?utm=a%20b"

        for path in (
            "/g/no-such-page",
            "/g/",
            "/g/a%2fb",
            "/g/..%2f..%2fsecret",
            f"/g/{booked.slug}/presign",
            f"/g/{booked.slug}.html",
            f"/guest-pages/{booked.slug}.html",
            "/",
        ):
            missing = await http.get(edge_url(settings, path))
            assert missing.status_code == 404, (path, missing.status_code)


# ---- the browser --------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def phone(browser: Any) -> AsyncIterator[Any]:
    context = await browser.new_context(**PHONE)
    await context.add_init_script(CSP_PROBE)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.errors = errors
    try:
        yield page
    finally:
        await context.close()


def tiny_png(width: int = 4, height: int = 3) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\x0b\x6e\x99" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


async def no_horizontal_scroll(page: Any) -> None:
    width = await page.evaluate("document.scrollingElement.scrollWidth")
    assert width <= 390, f"the page is {width}px wide on a 390px phone"


async def csp_violations(page: Any) -> list[str]:
    return list(await page.evaluate("window.__cspViolations || []"))


async def test_guest_page_on_a_phone(booked: Booked, settings: Settings, phone: Any) -> None:
    from playwright.async_api import expect

    response = await phone.goto(edge_url(settings, f"/g/{booked.slug}"))
    assert response is not None and response.status == 200
    assert "content-security-policy" in response.headers

    starts = datetime.fromisoformat(booked.data["starts_at"]).replace(
        tzinfo=ZoneInfo("America/Los_Angeles")
    )
    when = phone.locator("dd time")
    await expect(when).to_contain_text(f"{starts:%B} {starts.day}, {starts:%Y}")
    await expect(when).to_contain_text(f"9:00 AM {starts.tzname()}")
    details = phone.locator("section[aria-labelledby=details]")
    await expect(details).to_contain_text("3 hours")
    await expect(details).to_contain_text("Sheraton Marina")
    await expect(details).to_contain_text("Captain Sam, Alex, Jordan")
    await expect(phone.get_by_role("heading", level=1)).to_contain_text("Boatsetter Guest")

    ics = phone.get_by_role("link", name="Add to my calendar")
    await expect(ics).to_be_visible()
    href = await ics.get_attribute("href")
    assert href and href.startswith("data:text/calendar")
    calendar = unquote(href.split(",", 1)[1])
    assert "BEGIN:VCALENDAR" in calendar
    assert f"DTSTART:{starts.astimezone(UTC):%Y%m%dT%H%M%SZ}" in calendar
    assert (await ics.get_attribute("download") or "").endswith(".ics")

    text = await phone.locator("body").inner_text()
    for amount in REVENUE:
        assert amount not in text
    await no_horizontal_scroll(phone)

    ARTIFACTS.mkdir(exist_ok=True)
    await phone.screenshot(path=str(ARTIFACTS / "guest-page-phone.png"), full_page=True)
    assert await csp_violations(phone) == []


async def test_guest_uploads_a_photo(
    booked: Booked, settings: Settings, aws: AwsClients, phone: Any
) -> None:
    from playwright.async_api import expect

    await phone.goto(edge_url(settings, f"/g/{booked.slug}"))
    presign = await phone.locator("#upload").get_attribute("data-presign")
    assert presign, "the guest page has no upload form"
    event_id = presign.rstrip("/").split("/")[-2]
    assert [i["event_id"] for i in scc_items(aws, settings, booked.ref)] == [event_id]

    png = tiny_png()
    await phone.set_input_files(
        "#photo", files=[{"name": "sunset.png", "mimeType": "image/png", "buffer": png}]
    )
    await phone.get_by_role("button", name="Upload").click()
    status = phone.locator("#upload-status")
    try:
        await expect(status).to_contain_text("Uploaded 1 photo", timeout=20_000)
    except AssertionError as exc:
        raise AssertionError(
            f"upload status {await status.inner_text()!r}; page errors {phone.errors}; "
            f"CSP violations {await csp_violations(phone)}"
        ) from exc
    assert await csp_violations(phone) == []

    listing = aws.s3.list_objects_v2(Bucket=settings.guest_bucket, Prefix=f"photos/{event_id}/")
    keys = [o["Key"] for o in listing.get("Contents", [])]
    assert len(keys) == 1 and keys[0].endswith("-sunset.png"), keys
    obj = aws.s3.get_object(Bucket=settings.guest_bucket, Key=keys[0])
    assert obj["Body"].read() == png
    assert obj["ContentType"] == "image/png"


async def crew_link(settings: Settings, ref: str, address: str) -> str:
    def found() -> str | None:
        for mail in mail_for(settings, ref):
            links = mail.magic_links()
            if address in mail.to and "accept" in links:
                return links["accept"]
        return None

    return await eventually(found, what=f"the crew email to {address}")


async def test_crew_accepts_on_a_phone(booked: Booked, settings: Settings, phone: Any) -> None:
    from playwright.async_api import expect

    link = await crew_link(settings, booked.ref, "jordan@sailjada.com")
    response = await phone.goto(link)
    assert response is not None and response.status == 200
    await expect(phone.get_by_role("heading", level=1)).to_contain_text("Hi Jordan")
    accept = phone.get_by_role("button", name="Accept")
    await expect(accept).to_be_visible()
    await expect(phone.get_by_role("button", name="Decline")).to_be_visible()
    await no_horizontal_scroll(phone)
    ARTIFACTS.mkdir(exist_ok=True)
    await phone.screenshot(path=str(ARTIFACTS / "crew-confirm.png"), full_page=True)

    async with phone.expect_navigation():
        await accept.click()
    recorded = phone.get_by_role("status")
    await expect(recorded).to_contain_text("Your answer is recorded: accepted")
    await expect(phone.get_by_role("button", name="Accept")).to_have_count(0)
    await phone.screenshot(path=str(ARTIFACTS / "crew-confirmed.png"), full_page=True)
    assert await csp_violations(phone) == []
    text = await phone.locator("body").inner_text()
    for amount in REVENUE:
        assert amount not in text

    deadline = time.monotonic() + 30
    while True:
        status = await booked.handle.query(contract.QUERY_STATUS, result_type=BookingStatus)
        answer = next(a.answer for a in status.crew if a.crew_id == "crew-2")
        if answer == "accepted":
            break
        assert time.monotonic() < deadline, f"crew-2 is still {answer}"
        await asyncio.sleep(0.2)
    others = {a.crew_id: a.answer for a in status.crew if a.crew_id != "crew-2"}
    assert set(others.values()) == {"pending"}, others
