"""Continue-as-new on the real dev server in the middle of people's changes: a booking with a
low history limit continues as new among its crew's answers and two reschedules, and the run
that ends up current holds every one of them (the time-skipping tests cover the long quiet
waits; the Java test server cannot take continue-as-new right after a change)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from charters import contract
from charters.actions import act
from charters.models import CrewConfirmation, Reschedule
from charters.starter.book import booking_options, start_booking, validate
from tests.conftest import Booker
from tests.support import booking_data

CREW = ["captain-1", "crew-1", "crew-2"]


async def test_reschedules_across_continue_as_new_keep_every_change(booker: Booker) -> None:
    booking = validate(booking_data())
    options = booking_options(booker.settings, booking).model_copy(
        update={"history_event_limit": 20}
    )
    handle = await start_booking(booker.client, booker.settings, booking, options)
    await booker.wait_stage(handle.id, "awaiting-crew")
    for member in CREW:
        await act(
            booker.client,
            handle.id,
            contract.UPDATE_CREW_CONFIRMATION,
            CrewConfirmation(crew_id=member, decision="accept"),
        )
    await booker.wait_stage(handle.id, "confirmed")
    first_run = (await handle.describe()).run_id

    for n in (1, 2):
        moved = booking.starts_at + timedelta(days=n)
        verdict = await act(
            booker.client, handle.id, contract.UPDATE_RESCHEDULE, Reschedule(starts_at=moved)
        )
        assert verdict.recorded, verdict.message
        status = await booker.status(handle.id)
        for _ in range(300):
            if status.round == n + 1:
                break
            await asyncio.sleep(0.2)
            status = await booker.status(handle.id)
        assert status.round == n + 1, status
        assert status.charter is not None and status.charter.starts_at == moved

    # The new run starts at the first quiet point after the change (its invitations sent).
    for _ in range(300):
        if (await handle.describe()).run_id != first_run:
            break
        await asyncio.sleep(0.2)
    assert (await handle.describe()).run_id != first_run, "continued as new"
    status = await booker.status(handle.id)  # answered by the new run, from the carried state
    assert status.round == 3 and status.charter is not None
    assert status.charter.starts_at == booking.starts_at + timedelta(days=2)
    assert status.stage == "awaiting-crew" and {a.answer for a in status.crew} == {"pending"}
