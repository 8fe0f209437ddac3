"""Whole-life booking scenarios on the time-skipping server, recorded as histories for the replay
test (tests/test_replay.py): every path the workflow has, so a change that would break running
bookings fails there first.

They run against the session stack's activities (moto and the stand-ins), so the recorded
payloads are what the product's activities really return; the workflow tests that need no stack
use tests/workflow_harness.py instead, whose helpers these share."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from charters_dev.seed import set_service_key_hash
from temporalio.client import WorkflowHandle
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from charters import contract
from charters.models import (
    ApproveSccKeyRepair,
    AssignCrew,
    BookingOptions,
    BookingResult,
    CancelBooking,
    Reschedule,
)
from charters.settings import Settings
from charters.starter.book import booking_options, start_booking, validate
from charters.worker.wiring import aws_clients
from charters.workflows.charter_booking import CharterBookingWorkflow
from tests.support import booking_data, new_ref
from tests.workflow_harness import (
    REPLACEMENT,
    TEST_SERVER,
    awaiting_crew,
    confirm,
    register_search_attributes,
    reminders_sent,
    result_of,
    wait_status,
)

Handle = WorkflowHandle[Any, BookingResult]
CREW = ("captain-1", "crew-1", "crew-2")


class Skipper:
    """One time-skipping environment plus the settings of its worker's task queue."""

    def __init__(self, env: WorkflowEnvironment, settings: Settings, acts: Sequence[Any]) -> None:
        self.env = env
        self.client = env.client
        self.settings = settings
        self._activities = acts

    @asynccontextmanager
    async def worker(self, cached: bool = True) -> AsyncIterator[Worker]:
        """`cached=False` for a worker that is stopped and replaced mid-workflow: the test
        server does not hand a task on a dead worker's sticky queue to the next one in time."""
        with ThreadPoolExecutor(16) as executor:
            async with Worker(
                self.client,
                task_queue=self.settings.task_queue,
                workflows=[CharterBookingWorkflow],
                activities=list(self._activities),
                activity_executor=executor,
                max_cached_workflows=1000 if cached else 0,  # 1000: the SDK default
            ) as worker:
                yield worker

    def options(self, data: dict[str, Any]) -> BookingOptions:
        return booking_options(self.settings, validate(data)).model_copy(
            update={
                "reminder_after_hours": 24.0,
                "max_reminders": 2,
                "confirm_deadline_hours_before": 48.0,
            }
        )

    async def charter(self, days_ahead: float = 4.25, **overrides: Any) -> dict[str, Any]:
        """Booking data for a charter `days_ahead` of the test server's clock (local time)."""
        now = await self.env.get_current_time()
        starts = (now + timedelta(days=days_ahead)).astimezone(ZoneInfo("America/Los_Angeles"))
        starts = starts.replace(minute=0, second=0, microsecond=0, tzinfo=None)
        return booking_data(new_ref("TS"), starts_at=starts.isoformat(), **overrides)

    async def book(
        self, data: dict[str, Any], **options: Any
    ) -> WorkflowHandle[Any, BookingResult]:
        opts = self.options(data).model_copy(update=options)
        return await start_booking(self.client, self.settings, validate(data), opts)

    async def sleep(self, **delta: float) -> None:
        await self.env.sleep(timedelta(**delta))


@asynccontextmanager
async def skipper(
    settings: Settings, acts: Sequence[Any], data_converter: DataConverter
) -> AsyncIterator[Skipper]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(TEST_SERVER), data_converter=data_converter
    )
    try:
        await register_search_attributes(env.client)
        queue = f"ts-{uuid.uuid4().hex[:10]}"
        yield Skipper(env, settings.model_copy(update={"task_queue": queue}), acts)
    finally:
        await env.shutdown()


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


async def decline_and_replace_scenario(ts: Skipper) -> WorkflowHandle[Any, BookingResult]:
    """Crew-2 declines, operations assign crew-9, a day passes (one reminder each to crew-1 and
    crew-9), then crew-1 is confirmed by an operator and crew-9 accepts."""
    data = await ts.charter(days_ahead=6)
    async with ts.worker():
        handle = await ts.book(data)
        await awaiting_crew(handle)
        await confirm(handle, "captain-1")
        await confirm(handle, "crew-2", "decline")
        await wait_status(
            handle, lambda s: s.blocked_on == contract.BLOCKED_CREW_DECLINED, "declined"
        )
        await handle.signal(
            contract.SIGNAL_ASSIGN_CREW, AssignCrew(replaces="crew-2", member=REPLACEMENT)
        )
        await wait_status(
            handle, lambda s: s.blocked_on == contract.BLOCKED_CREW_CONFIRMATIONS, "replaced"
        )
        await ts.sleep(hours=25)
        await wait_status(handle, lambda s: reminders_sent(s)[REPLACEMENT.id] == 1, "reminded")
        await confirm(handle, "crew-1", by="operator:dana")
        await confirm(handle, REPLACEMENT.id)
        result = await result_of(handle)
    assert result.outcome == "completed"
    assert {a.crew_id: a.answer for a in result.confirmations} == {
        "captain-1": "accepted",
        "crew-1": "accepted",
        REPLACEMENT.id: "accepted",
    }
    return handle


async def cancel_scenario(ts: Skipper) -> WorkflowHandle[Any, BookingResult]:
    """Invited, one acceptance, a day passes, then the booking is cancelled."""
    data = await ts.charter(days_ahead=6)
    async with ts.worker():
        handle = await ts.book(data)
        await awaiting_crew(handle)
        await confirm(handle, "crew-1")
        await ts.sleep(hours=25)
        await wait_status(handle, lambda s: reminders_sent(s)["crew-2"] == 1, "reminded")
        await handle.signal(contract.SIGNAL_CANCEL_BOOKING, CancelBooking(reason="guest cancelled"))
        result = await result_of(handle)
    assert result.outcome == "cancelled"
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
