"""Every state of a crew member's magic link over HTTP, against the running stack: its own page,
status code and `X-Confirm-State`, the security headers on every response (errors included),
one press from the email's link, and a GET that changes nothing. Never a 500."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
from temporalio.client import Client

from charters import contract, magic_links
from charters.actions import act
from charters.models import AssignCrew, BookingStatus, CancelBooking, CrewMember, Reschedule
from charters.settings import Settings
from charters.worker.wiring import AwsClients
from tests.conftest import Booker
from tests.support import mail_for
from tests.test_confirm_endpoint import (
    Booked,
    answer_of,
    book,
    hmac_key,
    http,
    tampered,
    token_of,
)

HEADERS = ("content-security-policy", "x-content-type-options", "referrer-policy", "cache-control")


def assert_page(response: httpx.Response, state: str, code: int) -> None:
    assert response.status_code == code, (response.status_code, response.text[:300])
    assert response.headers.get("x-confirm-state") == state, response.headers
    for name in HEADERS:
        assert name in response.headers, f"{name} missing on the {state} page"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert "840.75" not in response.text


async def until(booker: Booker, wf: str, check: Callable[[BookingStatus], bool]) -> None:
    """Waits on the workflow's status, not on the page: the page is rate limited."""
    for _ in range(300):
        if check(await booker.status(wf)):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{wf}: {await booker.status(wf)}")


def buttons(page: str) -> list[str]:
    return re.findall(r'name="decision" value="(accept|decline)"', page)


async def test_one_press_from_the_email_and_answered(booker: Booker, settings: Settings) -> None:
    booked = await book(booker, settings)
    link = booked.links["crew-1"]
    assert any(f'{link}?d=accept"' in m.body for m in mail_for(settings, booked.ref))
    opened = await http("GET", f"{link}?d=accept")
    assert_page(opened, "pending", 200)
    assert re.search(r'value="accept" autofocus', opened.text), "the intended answer is focused"
    assert "<script" not in opened.text.lower()
    assert "Birthday celebration" in opened.text  # the booking's notes reach crew
    assert await answer_of(booked.handle, "crew-1") == "pending"  # opening changed nothing
    pressed = await http("POST", f"{link}?d=accept", data={"decision": "accept"})
    assert_page(pressed, "recorded", 200)
    assert "recorded" in pressed.text and "accepted" in pressed.text
    assert await answer_of(booked.handle, "crew-1") == "accepted"
    again = await http("GET", f"{link}?d=accept")
    assert_page(again, "answered", 200)
    assert buttons(again.text) == []
    twice = await http("POST", link, data={"decision": "accept"})
    assert_page(twice, "answered", 200)
    changing = await http("GET", f"{link}?d=decline")
    assert_page(changing, "answered", 200)
    assert buttons(changing.text) == []
    flipped = await http("POST", link, data={"decision": "decline"})
    assert_page(flipped, "answered", 200)
    assert await answer_of(booked.handle, "crew-1") == "accepted"
    bad = await http("POST", link, data={"decision": "maybe"})
    assert_page(bad, "choose", 400)


async def test_replaced_and_rescheduled(booker: Booker, settings: Settings, client: Client) -> None:
    booked = await book(booker, settings)
    wf = booked.handle.id
    sub = CrewMember(id="sub-1", name="Sam Sub", email="sub@sailjada.com", hourly_rate="25")
    verdict = await act(
        client, wf, contract.UPDATE_ASSIGN_CREW, AssignCrew(replaces="crew-2", member=sub)
    )
    assert verdict.recorded, verdict
    await until(booker, wf, lambda s: any(a.crew_id == "sub-1" for a in s.crew))
    replaced = await http("GET", booked.links["crew-2"])
    assert_page(replaced, "replaced", 410)
    assert buttons(replaced.text) == []
    posted = await http("POST", booked.links["crew-2"], data={"decision": "accept"})
    assert_page(posted, "replaced", 410)

    status = await booker.status(wf)
    assert status.charter is not None
    moved = status.charter.starts_at + timedelta(days=1)
    verdict = await act(client, wf, contract.UPDATE_RESCHEDULE, Reschedule(starts_at=moved))
    assert verdict.recorded, verdict
    await until(booker, wf, lambda s: s.round > status.round)
    old = await http("GET", f"{booked.links['crew-1']}?d=accept")
    assert_page(old, "rescheduled", 409)
    assert buttons(old.text) == []


async def test_cancelled(booker: Booker, settings: Settings, client: Client) -> None:
    booked = await book(booker, settings)
    wf = booked.handle.id
    verdict = await act(client, wf, contract.UPDATE_CANCEL_BOOKING, CancelBooking(reason="storm"))
    assert verdict.recorded, verdict
    await until(booker, wf, lambda s: s.stage in ("cancelling", "cancelled"))
    cancelled = await http("GET", f"{booked.links['captain-1']}?d=accept")
    assert_page(cancelled, "cancelled", 410)
    assert buttons(cancelled.text) == [] and "cancelled" in cancelled.text
    late = await http("POST", booked.links["captain-1"], data={"decision": "accept"})
    assert_page(late, "cancelled", 410)


async def test_closed_booking_is_completed(
    booker: Booker, settings: Settings, client: Client
) -> None:
    booked = await book(booker, settings)
    await client.get_workflow_handle(booked.handle.id).terminate("test: closed")
    shown = await http("GET", f"{booked.links['crew-1']}?d=accept")
    assert_page(shown, "completed", 410)
    posted = await http("POST", booked.links["crew-1"], data={"decision": "accept"})
    assert_page(posted, "completed", 410)


async def test_expired_tampered_unknown_and_error_pages(
    booker: Booker, settings: Settings, aws: AwsClients
) -> None:
    booked: Booked = await book(booker, settings)
    link = booked.links["crew-2"]
    key = hmac_key(aws, settings)
    genuine = magic_links.verify(key, token_of(link), datetime.now(UTC))
    expired = magic_links.sign(
        key, magic_links.MagicLink(booked.handle.id, "crew-2", int(time.time()) - 60, genuine.round)
    )
    unknown = magic_links.sign(
        key, magic_links.MagicLink("charter-NOSUCH9", "crew-2", int(time.time()) + 600, 1)
    )
    base = settings.confirm_base_url
    for method in ("GET", "POST"):
        data = {"decision": "accept"} if method == "POST" else None
        assert_page(await http(method, f"{base}/c/{expired}", data=data), "expired", 410)
        assert_page(await http(method, tampered(link), data=data), "tampered", 403)
        assert_page(await http(method, f"{base}/c/{unknown}", data=data), "unknown", 404)
    assert_page(await http("GET", f"{base}/nowhere"), "not-found", 404)
    assert_page(await http("PUT", link), "method", 405)
    odd = await http("POST", link, content=b"\xff\x00", headers={"content-type": "text/plain"})
    assert odd.status_code < 500 and "x-confirm-state" in odd.headers
    assert await answer_of(booked.handle, "crew-2") == "pending"
