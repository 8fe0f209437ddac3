"""The crew confirmation endpoint over plain HTTP, against the running stack: what a magic link
may and may not do. Opening a link changes nothing; Accept sends one update; a second use sends
none; tampered, expired and foreign tokens are refused without a signal."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

from charters import contract, magic_links
from charters.models import BookingStatus
from charters.settings import Settings
from charters.worker.wiring import AwsClients
from tests.conftest import Booker
from tests.support import booking_data, eventually, mail_for

REVENUE = ("840.75", "289.41")


@dataclass
class Booked:
    ref: str
    handle: WorkflowHandle[Any, Any]
    links: dict[str, str]  # crew id -> magic link (without ?d=)


async def crew_links(settings: Settings, ref: str, expected: int = 3) -> dict[str, str]:
    """crew id -> magic link, read from the mail SES (moto) sent for this booking."""
    emails = {
        "captain-1": "captain@sailjada.com",
        "crew-1": "alex@sailjada.com",
        "crew-2": "jordan@sailjada.com",
    }

    def found() -> dict[str, str] | None:
        links = {}
        for mail in mail_for(settings, ref):
            urls = mail.magic_links()
            for crew_id, address in emails.items():
                if address in mail.to and "accept" in urls:
                    links[crew_id] = urls["accept"]
        return links if len(links) >= expected else None

    return await eventually(found, what=f"{expected} crew emails for {ref}")


async def book(booker: Booker, settings: Settings) -> Booked:
    data = booking_data()
    handle = await booker.start(data)
    await booker.wait_stage(handle.id, "awaiting-crew")
    return Booked(data["booking_ref"], handle, await crew_links(settings, data["booking_ref"]))


@pytest.fixture(scope="module")
async def booked(booker: Booker, settings: Settings) -> Booked:
    return await book(booker, settings)


def update_name(event: Any) -> str:
    accepted = event.workflow_execution_update_accepted_event_attributes
    return str(accepted.accepted_request.input.name)


async def signal_count(handle: WorkflowHandle[Any, Any]) -> int:
    """Crew answers that reached the workflow's history: `crew_confirmation` signals and
    accepted updates (a refused update leaves no event)."""
    count = 0
    async for event in handle.fetch_history_events():
        if (
            event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
            and event.workflow_execution_signaled_event_attributes.signal_name
            == contract.SIGNAL_CREW_CONFIRMATION
        ) or (
            event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
            and update_name(event) == contract.UPDATE_CREW_CONFIRMATION
        ):
            count += 1
    return count


async def answer_of(handle: WorkflowHandle[Any, Any], crew_id: str) -> str:
    status = await handle.query(contract.QUERY_STATUS, result_type=BookingStatus)
    return next(a.answer for a in status.crew if a.crew_id == crew_id)


async def http(method: str, url: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(timeout=15) as client:
        return await client.request(method, url, **kwargs)


def tampered(link: str) -> str:
    """The same link with one character of the signature changed."""
    base, token = link.rsplit("/", 1)
    payload, mac = token.split(".", 1)
    flipped = "A" if mac[5] != "A" else "B"
    return f"{base}/{payload}.{mac[:5]}{flipped}{mac[6:]}"


def token_of(link: str) -> str:
    return link.rsplit("/", 1)[1]


def hmac_key(aws: AwsClients, settings: Settings) -> bytes:
    secret = aws.secretsmanager.get_secret_value(SecretId=settings.secret_magic_link_key)
    return str(secret["SecretString"]).encode()


def assert_secure_page(response: httpx.Response) -> None:
    csp = response.headers.get("content-security-policy", "")
    assert "default-src 'none'" in csp, csp
    assert "frame-ancestors 'none'" in csp, csp
    for amount in REVENUE:
        assert amount not in response.text, f"{amount} leaked into the confirmation page"


async def test_open_accept_and_reuse(booked: Booked) -> None:
    link, handle = booked.links["crew-1"], booked.handle
    before = await signal_count(handle)

    # Opening the link (as a mail scanner would) shows the question and changes nothing.
    for _ in range(2):
        opened = await http("GET", link)
        assert opened.status_code == 200, opened.text
        assert_secure_page(opened)
        assert "Alex" in opened.text and 'value="accept"' in opened.text
    await asyncio.sleep(0.5)
    assert await answer_of(handle, "crew-1") == "pending"
    assert await signal_count(handle) == before

    # Accept sends exactly one signal and the workflow records it.
    accepted = await http("POST", link, data={"decision": "accept"})
    assert accepted.status_code == 200, accepted.text
    assert_secure_page(accepted)
    assert "Your answer is recorded" in accepted.text and "accepted" in accepted.text
    assert await signal_count(handle) == before + 1

    async def recorded() -> bool:
        return await answer_of(handle, "crew-1") == "accepted"

    deadline = time.monotonic() + 30
    while not await recorded():
        assert time.monotonic() < deadline, "the accept never reached the workflow"
        await asyncio.sleep(0.2)

    # A second use (either button, or just opening it) shows the recorded answer, no new signal.
    for method, kwargs in (
        ("POST", {"data": {"decision": "decline"}}),
        ("POST", {"data": {"decision": "accept"}}),
        ("GET", {}),
    ):
        again = await http(method, link, **kwargs)
        assert again.status_code == 200, again.text
        assert "Your answer is recorded" in again.text and "accepted" in again.text
        assert 'value="accept"' not in again.text
    assert await signal_count(handle) == before + 1
    assert await answer_of(handle, "crew-1") == "accepted"


async def test_tampered_token_is_refused(booked: Booked) -> None:
    link, handle = booked.links["crew-2"], booked.handle
    before = await signal_count(handle)
    bad = tampered(link)
    assert bad != link
    for method, kwargs in (("GET", {}), ("POST", {"data": {"decision": "accept"}})):
        response = await http(method, bad, **kwargs)
        assert response.status_code == 403, response.text
        assert "not valid" in response.text
        assert_secure_page(response)
    assert await signal_count(handle) == before
    assert await answer_of(handle, "crew-2") == "pending"


async def test_expired_token_is_refused(
    booked: Booked, aws: AwsClients, settings: Settings
) -> None:
    handle = booked.handle
    before = await signal_count(handle)
    key = hmac_key(aws, settings)
    # The real key signs it: only the expiry is wrong.
    genuine = magic_links.verify(key, token_of(booked.links["crew-2"]), datetime.now(UTC))
    expired = magic_links.sign(
        key,
        magic_links.MagicLink(handle.id, "crew-2", int(time.time()) - 60, genuine.round),
    )
    url = f"{settings.confirm_base_url}/c/{expired}"
    for method, kwargs in (("GET", {}), ("POST", {"data": {"decision": "accept"}})):
        response = await http(method, url, **kwargs)
        assert 400 <= response.status_code < 500, response.text
        assert "expired" in response.text
        assert_secure_page(response)
    assert await signal_count(handle) == before
    assert await answer_of(handle, "crew-2") == "pending"


async def test_token_signed_with_another_key_is_refused(booked: Booked, settings: Settings) -> None:
    handle = booked.handle
    before = await signal_count(handle)
    forged = magic_links.sign(
        b"not-the-key-in-secrets-manager",
        magic_links.MagicLink(handle.id, "crew-2", int(time.time()) + 3600, 1),
    )
    url = f"{settings.confirm_base_url}/c/{forged}"
    for method, kwargs in (("GET", {}), ("POST", {"data": {"decision": "accept"}})):
        response = await http(method, url, **kwargs)
        assert response.status_code == 403, response.text
        assert_secure_page(response)
    assert await signal_count(handle) == before
    assert await answer_of(handle, "crew-2") == "pending"


async def test_malformed_tokens_are_refused(booked: Booked, settings: Settings) -> None:
    before = await signal_count(booked.handle)
    for token in ("x", "not-a-token", "a.b", "%00", "..", "e30.e30"):
        response = await http(
            "POST", f"{settings.confirm_base_url}/c/{token}", data={"decision": "accept"}
        )
        assert response.status_code in (403, 404), (token, response.status_code)
    assert await signal_count(booked.handle) == before
