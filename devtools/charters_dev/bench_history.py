"""One bench booking as measured: its sample (client clock plus its history's event times and
counts) and the crew bot that confirms for the crew as soon as the booking awaits them."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import secrets
import string
import time
from dataclasses import dataclass, field
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

from charters import contract
from charters.models import CrewConfirmation
from charters_dev.isolated import sample_charter


class RefMaker:
    """Unique Boatsetter-like references ([A-Z0-9]{4,16}): B + run id + counter."""

    def __init__(self) -> None:
        alphabet = string.ascii_uppercase + string.digits
        self.run = "".join(secrets.choice(alphabet) for _ in range(6))
        self._count = itertools.count(1)

    def __call__(self) -> str:
        return f"B{self.run}{next(self._count):05d}"


def booking_data(ref: str) -> dict[str, Any]:
    return sample_charter(ref, guest_name="Bench Guest", notes="Bench charter")


@dataclass
class Sample:
    ref: str
    workflow_id: str
    concurrency: int
    t_start: float = 0.0  # client clock (time.time) before start_workflow
    t_done: float = 0.0  # client clock when seen confirmed; then the history's time of it
    ok: bool = False
    error: str | None = None
    t_awaiting: float | None = None  # history: BookingStage=awaiting-crew upserted
    t_confirmed: float | None = None  # history: the last crew_confirmation signal
    t_settled: float | None = None  # history: BookingStage=confirmed upserted
    # history: how long at least one activity was running, within the pipeline (crew wait out)
    in_activities_ms: float | None = None
    events: dict[str, int] = field(default_factory=dict)  # history event counts by kind

    @property
    def total_ms(self) -> float:
        return (self.t_done - self.t_start) * 1000

    @property
    def crew_wait_ms(self) -> float:
        if self.t_awaiting is None or self.t_confirmed is None:
            return 0.0
        return max(0.0, (self.t_confirmed - self.t_awaiting) * 1000)

    @property
    def latency_ms(self) -> float:
        """The pipeline: start to result, less the crew wait."""
        return self.total_ms - self.crew_wait_ms

    @property
    def to_awaiting_ms(self) -> float | None:
        return None if self.t_awaiting is None else (self.t_awaiting - self.t_start) * 1000

    @property
    def after_crew_ms(self) -> float | None:
        return None if self.t_confirmed is None else (self.t_done - self.t_confirmed) * 1000


class CrewBot:
    """Confirms for every member of each booking that reaches `awaiting-crew`, and tells the
    bench when the booking is `confirmed` (the workflow itself goes on to the trip, a month
    later). One visibility query per tick covers every booking in flight (`BookingRef IN
    (...)`); each booking gets its `crew_confirmation` signals once.

    The bot's own load on the Temporal server is kept small: it queries only while some booking
    is old enough to be near awaiting-crew (0.8 x the typical time to get there so far) or has
    had its signals, and ticks at 5% of that typical time (between `poll_seconds` and 0.5 s), so
    its detection delay stays a small share of a booking. The bench's timings come from the
    history's event times, not from when the bot noticed."""

    STAGES = "BookingStage IN ('awaiting-crew', 'confirmed') AND ExecutionStatus = 'Running'"
    MAX_TICK = 0.5

    def __init__(self, client: Client, poll_seconds: float) -> None:
        self._client = client
        self._poll = poll_seconds
        self._waiting: dict[str, tuple[float, list[str]]] = {}  # workflow id -> (since, members)
        self._signalled: dict[str, asyncio.Future[None]] = {}  # awaiting `confirmed`
        self._refs: dict[str, str] = {}  # workflow id -> booking ref
        self._typical: float | None = None  # EWMA of start -> seen awaiting-crew, seconds
        self._tasks: set[asyncio.Task[None]] = set()
        self.queries = 0
        self.signals = 0
        self.errors: list[str] = []

    def expect(self, workflow_id: str, ref: str, member_ids: list[str]) -> asyncio.Future[None]:
        """Starts watching a booking; the future resolves once it is confirmed."""
        self._waiting[workflow_id] = (time.monotonic(), member_ids)
        self._refs[workflow_id] = ref
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._signalled[workflow_id] = done
        return done

    def new_phase(self) -> None:
        """Forget the typical time to awaiting-crew: a C=1 run after a C=50 one would otherwise
        wait the congested run's time before its first query."""
        self._typical = None

    def forget(self, workflow_id: str) -> None:
        self._waiting.pop(workflow_id, None)
        self._refs.pop(workflow_id, None)
        self._signalled.pop(workflow_id, None)

    def _tick(self) -> float:
        if self._typical is None:
            return self._poll
        return min(max(0.05 * self._typical, self._poll), self.MAX_TICK)

    def _due(self) -> bool:
        if any(wf not in self._waiting for wf in self._signalled):
            return True  # signals sent, confirmation awaited
        if self._typical is None:
            return bool(self._waiting)
        oldest = min((since for since, _ in self._waiting.values()), default=None)
        return oldest is not None and time.monotonic() - oldest >= 0.8 * self._typical

    def _query(self) -> str:
        refs = ", ".join(f"'{ref}'" for ref in self._refs.values())
        return f"{contract.SA_BOOKING_REF.name} IN ({refs}) AND {self.STAGES}"

    async def run(self) -> None:
        stage_key = contract.SA_BOOKING_STAGE
        while True:
            if self._refs and self._due():
                self.queries += 1
                try:
                    async for wf in self._client.list_workflows(self._query(), page_size=1000):
                        stage = wf.typed_search_attributes.get(stage_key)
                        if stage == "confirmed":
                            self._confirmed(wf.id)
                        found = self._waiting.pop(wf.id, None)
                        if found is not None:
                            self._seen(time.monotonic() - found[0])
                            task = asyncio.create_task(self._confirm(wf.id, found[1]))
                            self._tasks.add(task)
                            task.add_done_callback(self._tasks.discard)
                except Exception as exc:  # noqa: BLE001 - a failed tick is retried next tick
                    self.errors.append(f"visibility: {exc}")
            await asyncio.sleep(self._tick())

    def _confirmed(self, workflow_id: str) -> None:
        done = self._signalled.pop(workflow_id, None)
        self._refs.pop(workflow_id, None)
        if done is not None and not done.done():
            done.set_result(None)

    def _seen(self, seconds: float) -> None:
        self._typical = seconds if self._typical is None else 0.8 * self._typical + 0.2 * seconds

    async def _confirm(self, workflow_id: str, members: list[str]) -> None:
        handle = self._client.get_workflow_handle(workflow_id)
        try:
            await asyncio.gather(
                *(
                    handle.signal(
                        contract.SIGNAL_CREW_CONFIRMATION,
                        CrewConfirmation(crew_id=member, decision="accept", by="bench"),
                    )
                    for member in members
                )
            )
            self.signals += len(members)
        except Exception as exc:  # noqa: BLE001 - shows up as a booking that timed out
            self.errors.append(f"signal {workflow_id}: {exc}")


LOCAL_ACTIVITY_MARKER = "core_local_activity"


def _event_seconds(event: Any) -> float:
    return float(event.event_time.seconds) + event.event_time.nanos / 1e9


async def read_history_times(client: Client, sample: Sample) -> None:
    """When the booking entered awaiting-crew and when its last confirmation arrived, and how
    much of the pipeline was spent inside activities (the rest is orchestration: workflow
    tasks, dispatch, the start and result calls)."""
    history = await client.get_workflow_handle(sample.workflow_id).fetch_history()
    key = contract.SA_BOOKING_STAGE.name
    started: dict[int, float] = {}
    intervals: list[tuple[float, float]] = []
    counted = {
        EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED: "workflow_tasks",
        EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED: "workflow_tasks_failed",
        EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT: "workflow_tasks_timed_out",
        EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: "activities",
        EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED: "activities_failed",
        EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: "activities_timed_out",
    }
    sample.events = dict.fromkeys(["history_events", *counted.values(), "local_activities"], 0)
    sample.events["history_events"] = len(history.events)
    for event in history.events:
        if event.event_type in counted:
            sample.events[counted[event.event_type]] += 1
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attrs_started = event.activity_task_started_event_attributes
            started[attrs_started.scheduled_event_id] = _event_seconds(event)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            done = event.activity_task_completed_event_attributes
            if done.scheduled_event_id in started:
                intervals.append((started[done.scheduled_event_id], _event_seconds(event)))
        elif event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            local = _local_activity_interval(event)
            if local is not None:
                sample.events["local_activities"] += 1
                intervals.append(local)
        if event.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes
            payload = fields.indexed_fields.get(key)
            if payload is not None:
                with contextlib.suppress(ValueError):
                    stage = json.loads(payload.data)
                    if stage == "awaiting-crew" and sample.t_awaiting is None:
                        sample.t_awaiting = _event_seconds(event)
                    elif stage == "confirmed" and sample.t_settled is None:
                        sample.t_settled = _event_seconds(event)
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            attrs = event.workflow_execution_signaled_event_attributes
            if attrs.signal_name == contract.SIGNAL_CREW_CONFIRMATION:
                sample.t_confirmed = _event_seconds(event)
    if sample.t_settled is not None:
        sample.t_done = sample.t_settled  # the bot saw it a tick later
    windows = [(sample.t_start, sample.t_done)]
    if sample.t_awaiting is not None and sample.t_confirmed is not None:
        windows = [(sample.t_start, sample.t_awaiting), (sample.t_confirmed, sample.t_done)]
    sample.in_activities_ms = 1000 * sum(_covered(intervals, low, high) for low, high in windows)


def _local_activity_interval(event: Any) -> tuple[float, float] | None:
    """A local activity's marker: its first schedule to its completion, both on the worker's
    clock (the bench's host clock), from the SDK core's marker data (plain JSON, never the
    codec's: core writes it)."""
    attrs = event.marker_recorded_event_attributes
    if attrs.marker_name != LOCAL_ACTIVITY_MARKER or "data" not in attrs.details:
        return None
    try:
        data = json.loads(attrs.details["data"].payloads[0].data)
        begin, end = data["original_schedule_time"], data["complete_time"]
        return (
            begin["seconds"] + begin.get("nanos", 0) / 1e9,
            end["seconds"] + end.get("nanos", 0) / 1e9,
        )
    except (IndexError, KeyError, TypeError, ValueError):
        return None


def _covered(intervals: list[tuple[float, float]], low: float, high: float) -> float:
    """Length of the union of `intervals` clipped to [low, high]."""
    total, reach = 0.0, low
    for start, end in sorted(intervals):
        start, end = max(start, reach), min(end, high)
        if end > start:
            total += end - start
            reach = end
    return total


async def confirmed_or_ended(
    confirmed: asyncio.Future[None], handle: WorkflowHandle[Any, Any]
) -> None:
    """The booking is confirmed (it then waits for the trip), or its workflow ended first: its
    result (a failure raises) stands for the confirmation."""
    ended = asyncio.ensure_future(handle.result())
    try:
        await asyncio.wait({confirmed, ended}, return_when=asyncio.FIRST_COMPLETED)
        if ended.done() and not confirmed.done():
            ended.result()
    finally:
        ended.cancel()
