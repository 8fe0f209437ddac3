"""Whole-life booking scenarios on the time-skipping server, recorded as histories for the replay
test (tests/test_replay.py): every path the workflow has, so a change that would break running
bookings fails there first."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from charters_dev.seed import set_service_key_hash
from temporalio.client import WorkflowHandle

from charters import contract
from charters.models import ApproveSccKeyRepair, BookingResult, CancelBooking, Reschedule
from charters.worker.wiring import aws_clients
from tests.test_crew_waits_time_skipping import (
    Skipper,
    awaiting_crew,
    cancel_scenario,
    confirm,
    decline_and_replace_scenario,
    result_of,
    wait_status,
)

Handle = WorkflowHandle[Any, BookingResult]
CREW = ("captain-1", "crew-1", "crew-2")


async def _confirm_all(handle: Handle) -> None:
    for member in CREW:
        await confirm(handle, member)
    await wait_status(handle, lambda s: s.stage == "confirmed", "confirmed")


async def happy_path_scenario(ts: Skipper) -> Handle:
    """Booked 10 days ahead, all accept, reminders, the trip, the thank-you."""
    data = await ts.charter(days_ahead=10)
    async with ts.worker():
        handle = await ts.book(data)
        await awaiting_crew(handle)
        await _confirm_all(handle)
        await result_of(handle)
    return handle


async def regular_activities_scenario(ts: Skipper) -> Handle:
    """The happy path with every step a regular activity (`CHARTERS_LOCAL_ACTIVITIES=false`)."""
    data = await ts.charter(days_ahead=10)
    async with ts.worker():
        handle = await ts.book(data, local_activities=False)
        await awaiting_crew(handle)
        await _confirm_all(handle)
        await result_of(handle)
    return handle


async def scc_block_repair_scenario(ts: Skipper) -> Handle:
    """SERVICE_KEY_HASH missing; an operator approves the repair; the booking goes on."""
    aws = aws_clients(ts.settings)
    set_service_key_hash(aws, ts.settings, present=False)
    try:
        data = await ts.charter(days_ahead=5)
        async with ts.worker():
            handle = await ts.book(data)
            await wait_status(
                handle, lambda s: s.blocked_on == contract.BLOCKED_SCC_KEY_HASH, "blocked"
            )
            await ts.sleep(minutes=5)
            await handle.signal(
                contract.SIGNAL_APPROVE_SCC_KEY_REPAIR, ApproveSccKeyRepair(approved_by="dana")
            )
            await awaiting_crew(handle)
            await _confirm_all(handle)
            await result_of(handle)
    finally:
        set_service_key_hash(aws, ts.settings, present=True)
    return handle


async def reschedule_scenario(ts: Skipper) -> Handle:
    """Confirmed, then moved a day later: asked again, confirmed again, the trip."""
    data = await ts.charter(days_ahead=8)
    async with ts.worker():
        handle = await ts.book(data)
        await awaiting_crew(handle)
        await _confirm_all(handle)
        await ts.sleep(days=1)
        moved = datetime.fromisoformat(data["starts_at"]) + timedelta(days=1)
        await handle.signal(contract.SIGNAL_RESCHEDULE, Reschedule(starts_at=moved))
        await wait_status(handle, lambda s: s.round == 2, "rescheduled")
        await _confirm_all(handle)
        await result_of(handle)
    return handle


async def cancel_confirmed_scenario(ts: Skipper) -> Handle:
    """Confirmed, then the guest cancels five days later (by update's signal twin)."""
    data = await ts.charter(days_ahead=12)
    async with ts.worker():
        handle = await ts.book(data)
        await awaiting_crew(handle)
        await _confirm_all(handle)
        await ts.sleep(days=5)
        await handle.signal(contract.SIGNAL_CANCEL_BOOKING, CancelBooking(reason="guest"))
        await result_of(handle)
    return handle


SCENARIOS = {
    "happy-path-completed": (happy_path_scenario, "completed"),
    "happy-path-regular-activities": (regular_activities_scenario, "completed"),
    "scc-block-repair": (scc_block_repair_scenario, "completed"),
    "decline-replacement": (decline_and_replace_scenario, "completed"),
    "reschedule": (reschedule_scenario, "completed"),
    "cancel-awaiting-crew": (cancel_scenario, "cancelled"),
    "cancel-after-confirmed": (cancel_confirmed_scenario, "cancelled"),
}
