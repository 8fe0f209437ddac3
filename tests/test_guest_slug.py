"""The guest page's slug cannot be guessed from what is known of a booking (its date and
reference): `charters book` adds a random token before the workflow starts, and the booking keeps
it for life (a reschedule, a second start of the same file). On the local stack: the page is in
S3 under the chosen slug, and nothing under the date-and-reference form."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import pytest
from temporalio.exceptions import WorkflowAlreadyStartedError

from charters import contract
from charters.actions import act
from charters.models import Reschedule
from charters.settings import Settings
from charters.starter.book import validate
from charters.worker.wiring import AwsClients
from tests.conftest import Booker
from tests.support import booking_data


def page_exists(aws: AwsClients, settings: Settings, slug: str) -> bool:
    found = aws.s3.list_objects_v2(
        Bucket=settings.guest_bucket, Prefix=f"{settings.guest_key_prefix}{slug}."
    )
    return bool(found.get("Contents"))


async def test_the_slug_is_chosen_once_and_kept_for_the_bookings_life(
    booker: Booker, aws: AwsClients, settings: Settings
) -> None:
    data = booking_data(slug=None)  # a booking file names no slug
    booking = validate(data)
    ref = booking.booking_ref.lower()
    handle = await booker.start(data)
    try:
        status = await booker.wait_stage(handle.id, "awaiting-crew")
        assert status.charter is not None
        slug = status.charter.slug
        month = f"{booking.starts_at:%b}".lower()
        assert re.fullmatch(f"{month}-{booking.starts_at.day}-{ref}-[a-z2-7]{{16}}", slug), slug
        assert status.guest_page_url == settings.guest_page_url(slug)
        assert page_exists(aws, settings, slug)
        assert not page_exists(aws, settings, f"{month}-{booking.starts_at.day}-{ref}")

        with pytest.raises(WorkflowAlreadyStartedError):  # the same file booked again
            await booker.start(data)
        assert (await booker.status(handle.id)).charter.slug == slug  # type: ignore[union-attr]

        moved = booking.starts_at + timedelta(days=1)
        verdict = await act(
            booker.client, handle.id, contract.UPDATE_RESCHEDULE, Reschedule(starts_at=moved)
        )
        assert verdict.recorded, verdict.message
        for _ in range(300):
            status = await booker.status(handle.id)
            if status.round == 2 and status.stage == "awaiting-crew":
                break
            await asyncio.sleep(0.2)
        assert status.charter is not None and status.charter.starts_at == moved
        assert status.charter.slug == slug, "a reschedule keeps the page's address"
        assert status.guest_page_url == settings.guest_page_url(slug)
    finally:
        await handle.terminate("test done")
