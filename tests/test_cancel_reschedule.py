"""cancel_booking compensates once each, at several stages; reschedule reaches every system."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import httpx
from charters_dev.seed import set_service_key_hash

from charters import contract
from charters.actions import act, settled
from charters.models import CancelBooking, Reschedule
from charters.settings import Settings
from charters.worker.wiring import AwsClients
from tests.conftest import Booker
from tests.support import (
    booking_data,
    calendar_entries,
    eventually,
    follow_link,
    invalidations_for,
    mail_for,
    scc_items,
)


def slug_of(data: dict[str, str]) -> str:
    from charters.starter.book import validate

    return validate(data).page_slug


async def test_cancel_while_blocked_on_scc(
    booker: Booker,
    aws: AwsClients,
    settings: Settings,
) -> None:
    set_service_key_hash(aws, settings, present=False)
    try:
        data = booking_data()
        handle = await booker.start(data)
        await booker.wait_blocked(handle.id, contract.BLOCKED_SCC_KEY_HASH)
        await handle.signal(contract.SIGNAL_CANCEL_BOOKING, CancelBooking(reason="guest cancelled"))
        await handle.signal(contract.SIGNAL_CANCEL_BOOKING, CancelBooking(reason="twice"))
        result = await settled(handle, 60)
    finally:
        set_service_key_hash(aws, settings, present=True)
    assert result.outcome == "cancelled" and result.scc_event_id is None
    entries = calendar_entries(settings, data["booking_ref"])
    assert len(entries) == 1 and entries[0]["status"] == "cancelled"
    assert scc_items(aws, settings, data["booking_ref"]) == []
    sent = mail_for(settings, data["booking_ref"])
    guest = data["guest"]["email"]
    assert sorted(m.to[0] for m in sent) == sorted([settings.operations_email, guest]), (
        "one alert, the guest told once, no crew mail (nobody was asked)"
    )
    status = await booker.status(handle.id)
    assert status.stage == "cancelled" and status.blocked_on is None


async def test_reschedule_reaches_calendar_scc_page_and_crew(
    booker: Booker,
    aws: AwsClients,
    settings: Settings,
) -> None:
    data = booking_data()
    ref, slug = data["booking_ref"], slug_of(data)
    handle = await booker.start(data)
    await booker.wait_stage(handle.id, "awaiting-crew")
    old_links = [m.magic_links()["accept"] for m in mail_for(settings, ref) if m.magic_links()]
    new_start = (datetime.fromisoformat(data["starts_at"]) + timedelta(days=2)).replace(hour=14)
    await handle.signal(contract.SIGNAL_RESCHEDULE, Reschedule(starts_at=new_start))

    asked = await eventually(
        lambda: (
            [m for m in mail_for(settings, ref) if m.subject.startswith("Rescheduled:")]
            if len([m for m in mail_for(settings, ref) if m.subject.startswith("Rescheduled:")])
            == 3
            else None
        ),
        what="rescheduled emails",
    )
    stale = await asyncio.to_thread(httpx.get, old_links[0], timeout=10)
    assert stale.status_code == 409, "the invitation was for the old date"
    entry = calendar_entries(settings, ref)[0]
    assert (entry["date"], entry["start"]) == (new_start.date().isoformat(), "14:00")
    assert scc_items(aws, settings, ref)[0]["date"].startswith(new_start.date().isoformat())
    page = aws.s3.get_object(Bucket=settings.guest_bucket, Key=f"guest-pages/{slug}.html")
    assert "2:00 PM" in page["Body"].read().decode()
    assert len(invalidations_for(aws, settings, slug)) == 2
    for mail in asked:
        response = await asyncio.to_thread(follow_link, mail.magic_links()["accept"], "accept")
        assert response.status_code == 200
    result = await settled(handle, 60)
    assert result.outcome == "confirmed"
    assert calendar_entries(settings, ref)[0]["status"] == "confirmed"


async def test_reschedule_into_the_past_is_refused_and_booking_goes_on(booker: Booker) -> None:
    data = booking_data()
    handle = await booker.start(data)
    await booker.wait_stage(handle.id, "awaiting-crew")
    verdict = await act(
        booker.client,
        handle.id,
        contract.UPDATE_RESCHEDULE,
        Reschedule(starts_at=datetime.now() - timedelta(days=400)),
    )
    assert not verdict.recorded and verdict.code == contract.REFUSED_INVALID
    assert "reschedule refused" in verdict.message and "starts_at" in verdict.message
    status = await booker.status(handle.id)
    assert status.round == 1 and status.stage == "awaiting-crew"
    await booker.answer_all(data["booking_ref"])
    assert (await settled(handle, 60)).outcome == "confirmed"
