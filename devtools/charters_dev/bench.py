"""`charters bench` / `make bench`: booking latency and throughput on a fresh embedded stack.

What it does, in order:

1. Starts its own `DevStack` (Temporal dev server, moto, stand-ins, fault proxy, worker, confirm
   endpoint) on free ports in a temporary state dir, and sets the proxy spec `delay=L` on all three
   proxy targets (aws, calendar, scc): every external call the worker makes waits L ms.
2. Warms the worker up, then books one charter alone and counts the requests each proxy target
   saw (`calls_per_booking_measured`), to check the call counts `WORKFLOW_STAGES` declares.
3. Sequential baseline: the same activity functions, built by `charters.worker.wiring.activities`
   against the same proxies, called one after another in this process without Temporal (crew
   wait skipped). `sequential_p50_ms` is the median of a few runs.
4. For each concurrency C (default 1, 10, 50) books N charters with at most C in flight
   (closed loop: a slot starts its next booking when its last one completes).

The crew. Confirmations are automated, and that automation is not the pipeline: a "crew bot"
lists the bookings whose `BookingStage` search attribute is `awaiting-crew` (one visibility query
per tick for all bookings in flight, instead of a status query per booking) and signals
`crew_confirmation` (accept) for every member straight through the Temporal client, which is
what the confirmation endpoint does once a crew member presses the button in a magic-link email.
The emails exist at that point: the workflow enters `awaiting-crew` only after every invitation
has been sent. Clicking the links instead would add two HTTP round trips and a mail scan per
member and measure the bench's own polling, not the product.

Timings of one booking, from the client's clock and the workflow's history (same host clock):
`total` is start_workflow call -> result returned; `to_awaiting_crew` is start -> the history
event that set `BookingStage=awaiting-crew`; `crew_wait` is that event -> the last
`crew_confirmation` signal in history (the automation's delay: the human part in production);
`after_crew` is that signal -> result; `latency` = `total - crew_wait` is the pipeline, and the
p50/p95/p99 reported everywhere are of it unless named otherwise.

`bound_ms`: the critical path of one booking is the longest chain of dependent external calls
(see `WORKFLOW_STAGES`, `CRITICAL_PATH`); with every call delayed L ms no implementation can
finish faster than `len(CRITICAL_PATH) * L`.

Goals (reported PASS or MISS, never failing the run): at C=1 the p50 latency is at most 1.25 x
bound and below the sequential baseline; at C=50 at least 30 bookings/s. Below that rate with
every core busy and the Temporal server the largest consumer, the status is CEILING: the figure
is the ceiling this machine puts on the server, not a fault of the worker.

Results: a Rich table on the console, `bench-results/<timestamp>.json` and `<timestamp>.png`
(latency histogram, throughput vs concurrency; needs the `bench` extra: matplotlib).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import os
import secrets
import shutil
import statistics
import string
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

from charters import contract
from charters.actions import settled
from charters.models import (
    Booking,
    CalendarEntryRequest,
    CalendarStatusRequest,
    CaptainSummaryRequest,
    CrewAnswer,
    CrewConfirmation,
    CrewEmailRequest,
    GuestPageRequest,
    InvalidationRequest,
    RedactionRequest,
    SccEventRequest,
)
from charters.settings import Settings
from charters.starter.book import start_booking, validate
from charters.temporal_client import connect
from charters.worker import wiring
from charters_dev.isolated import isolated_settings, sample_charter
from charters_dev.stack import DevStack

GOAL_C1_OVER_BOUND = 1.25
GOAL_BOOKINGS_PER_S = 30.0
GOAL_CONCURRENCY = 50
PROXY_TARGETS = ("aws", "calendar", "scc")
# Processes of the stack whose CPU and memory are reported ("bench" is this process).
PROCESSES = ("worker", "temporal", "moto", "standins", "faultproxy", "confirm", "codec")

# ---- the critical path ----------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    target: str  # the fault proxy target the call goes through: aws, calendar or scc
    what: str


def _ledger(effect: str) -> tuple[Call, ...]:
    """EffectLedger.once on a new key: conditional claim, the effect, record the result."""
    return (
        Call("aws", "dynamodb PutItem (ledger claim)"),
        Call("aws", effect),
        Call("aws", "dynamodb UpdateItem (ledger record)"),
    )


# External calls of each activity, read from charters/activities. Secret reads are left out:
# SecretReader caches each secret for 30 s, so only the first booking after a cache expiry pays
# one more aws call in check_scc_service_key, create_calendar_entry and send_crew_email. Redaction
# writes only fields that carry revenue; the SCC notes never do, so a clean item is two reads.
ACTIVITY_CALLS: dict[str, tuple[Call, ...]] = {
    "validate_booking": (),
    "create_calendar_entry": (
        Call("calendar", "GET /calendar?booking_ref (look-up)"),
        Call("calendar", "POST /calendar"),
    ),
    "check_scc_service_key": (Call("aws", "lambda GetFunctionConfiguration"),),
    "create_scc_event": (
        Call("scc", "GET /prod/events?external_ref (look-up)"),
        Call("scc", "POST /prod/events"),
    ),
    "redact_scc_revenue": (
        Call("aws", "dynamodb GetItem"),
        Call("aws", "dynamodb GetItem (verify)"),
    ),
    "publish_guest_page": (Call("aws", "s3 PutObject"),),
    "invalidate_guest_page": _ledger("cloudfront CreateInvalidation"),
    "send_crew_email": _ledger("sesv2 SendEmail"),
    "send_captain_summary": _ledger("sesv2 SendEmail"),
    "update_calendar_entry": (Call("calendar", "PATCH /calendar/{entry_id}"),),
}

# CharterBookingWorkflow.run, stage by stage (the crew wait left out). Each stage is a tuple of
# branches that run in parallel; each branch is a sequence of activities, one after another.
# The bench booking has a captain and two crew: three invitation emails side by side.
MEMBERS = 3
WORKFLOW_STAGES: tuple[tuple[str, tuple[tuple[str, ...], ...]], ...] = (
    ("validate", (("validate_booking",),)),
    ("provision", (("create_calendar_entry",), ("check_scc_service_key", "create_scc_event"))),
    (
        "redact and publish",
        (("redact_scc_revenue",), ("publish_guest_page", "invalidate_guest_page")),
    ),
    ("notify crew", (("send_crew_email",),) * MEMBERS),
    # ... awaiting-crew: the human wait, not part of the pipeline ...
    ("finalize", (("send_captain_summary",), ("update_calendar_entry",))),
)


def _branch_calls(branch: tuple[str, ...]) -> list[tuple[str, Call]]:
    return [(activity, call) for activity in branch for call in ACTIVITY_CALLS[activity]]


def critical_path() -> list[tuple[str, Call]]:
    """The longest chain of dependent calls: per stage, its longest branch.

    validate (0, a local activity) -> provision: max(calendar look-up + create = 2, SCC: lambda
    check, look-up, create = 3) -> max(redact: get, get = 2; publish: put, then invalidate:
    ledger claim, create, record = 4) -> notify: per member in parallel, ledger claim, send,
    record (3) -> [crew wait] -> max(captain summary 3, calendar patch 1): 13 calls."""
    chain: list[tuple[str, Call]] = []
    for _, branches in WORKFLOW_STAGES:
        longest: list[tuple[str, Call]] = []
        for branch in branches:
            calls = _branch_calls(branch)
            if len(calls) > len(longest):
                longest = calls
        chain += longest
    return chain


def all_calls() -> list[tuple[str, Call]]:
    """Every call of one booking: what a strictly sequential run waits for."""
    return [pair for _, branches in WORKFLOW_STAGES for b in branches for pair in _branch_calls(b)]


CRITICAL_PATH = critical_path()


def expected_calls_per_target() -> dict[str, int]:
    counts = dict.fromkeys(PROXY_TARGETS, 0)
    for _, call in all_calls():
        counts[call.target] += 1
    return counts


# ---- configuration --------------------------------------------------------------------------


@dataclass
class BenchConfig:
    """Defaults keep `make bench` to a few minutes on two cores."""

    concurrency: list[int] = field(default_factory=lambda: [1, 10, 50])
    bookings: list[int] = field(default_factory=lambda: [10, 50, 200])
    latency_ms: float = 50.0
    baseline_runs: int = 5
    warmup: int = 2
    out_dir: Path = Path("bench-results")
    crew_poll_seconds: float = 0.05
    booking_timeout_seconds: float = 120.0
    plot: bool = True
    keep_state: bool = False
    # Where the stack's state dir (the dev server's SQLite) goes; None: tmpfs when there is one.
    state_base: Path | None = None

    def phases(self) -> list[tuple[int, int]]:
        """(concurrency, bookings) pairs; one bookings value applies to every concurrency."""
        if not self.concurrency:
            raise ValueError("at least one concurrency")
        if len(self.bookings) == 1:
            counts = self.bookings * len(self.concurrency)
        elif len(self.bookings) == len(self.concurrency):
            counts = list(self.bookings)
        else:
            raise ValueError("give one --bookings value, or one per --concurrency")
        if any(c < 1 for c in self.concurrency) or any(n < 1 for n in counts):
            raise ValueError("concurrency and bookings must be at least 1")
        return list(zip(self.concurrency, counts, strict=True))


def default_state_base() -> Path | None:
    """/dev/shm when writable: the dev server's SQLite then never waits for the disk to flush,
    which on a small VM costs more than the pipeline does (about 20% of the throughput here).
    The bench measures the product, not this machine's fsync; `--state-base` picks another."""
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else None


def bench_settings(state_dir: Path) -> Settings:
    """Every port free, the state in `state_dir`: nothing shared with a running `charters dev`."""
    return isolated_settings(state_dir)


# ---- bookings -------------------------------------------------------------------------------


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
    t_done: float = 0.0  # client clock after the result arrived
    ok: bool = False
    error: str | None = None
    t_awaiting: float | None = None  # history: BookingStage=awaiting-crew upserted
    t_confirmed: float | None = None  # history: the last crew_confirmation signal
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
    """Confirms for every member of each booking that reaches `awaiting-crew`: one visibility
    query per tick finds them all; each gets its `crew_confirmation` signals once.

    The bot's own load on the Temporal server is kept small: it queries only while some booking
    is old enough to be near awaiting-crew (0.8 x the typical time to get there so far), and
    ticks at 5% of that typical time (between `poll_seconds` and 0.5 s), so its detection delay
    (reported as the crew wait, outside the latency) stays a small share of a booking."""

    QUERY = f"{contract.SA_BOOKING_STAGE.name} = 'awaiting-crew' AND ExecutionStatus = 'Running'"
    MAX_TICK = 0.5

    def __init__(self, client: Client, poll_seconds: float) -> None:
        self._client = client
        self._poll = poll_seconds
        self._waiting: dict[str, tuple[float, list[str]]] = {}
        self._typical: float | None = None  # EWMA of start -> seen awaiting-crew, seconds
        self._tasks: set[asyncio.Task[None]] = set()
        self.queries = 0
        self.signals = 0
        self.errors: list[str] = []

    def expect(self, workflow_id: str, member_ids: list[str]) -> None:
        self._waiting[workflow_id] = (time.monotonic(), member_ids)

    def forget(self, workflow_id: str) -> None:
        self._waiting.pop(workflow_id, None)

    def _tick(self) -> float:
        if self._typical is None:
            return self._poll
        return min(max(0.05 * self._typical, self._poll), self.MAX_TICK)

    def _due(self) -> bool:
        if self._typical is None:
            return bool(self._waiting)
        oldest = min((since for since, _ in self._waiting.values()), default=None)
        return oldest is not None and time.monotonic() - oldest >= 0.8 * self._typical

    async def run(self) -> None:
        while True:
            if self._due():
                self.queries += 1
                try:
                    async for wf in self._client.list_workflows(self.QUERY, page_size=1000):
                        found = self._waiting.pop(wf.id, None)
                        if found is not None:
                            self._seen(time.monotonic() - found[0])
                            task = asyncio.create_task(self._confirm(wf.id, found[1]))
                            self._tasks.add(task)
                            task.add_done_callback(self._tasks.discard)
                except Exception as exc:  # noqa: BLE001 - a failed tick is retried next tick
                    self.errors.append(f"visibility: {exc}")
            await asyncio.sleep(self._tick())

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
    sample.events = dict.fromkeys(["history_events", *counted.values()], 0)
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
        if event.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes
            payload = fields.indexed_fields.get(key)
            if payload is not None and sample.t_awaiting is None:
                with contextlib.suppress(ValueError):
                    if json.loads(payload.data) == "awaiting-crew":
                        sample.t_awaiting = _event_seconds(event)
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            attrs = event.workflow_execution_signaled_event_attributes
            if attrs.signal_name == contract.SIGNAL_CREW_CONFIRMATION:
                sample.t_confirmed = _event_seconds(event)
    windows = [(sample.t_start, sample.t_done)]
    if sample.t_awaiting is not None and sample.t_confirmed is not None:
        windows = [(sample.t_start, sample.t_awaiting), (sample.t_confirmed, sample.t_done)]
    sample.in_activities_ms = 1000 * sum(_covered(intervals, low, high) for low, high in windows)


def _covered(intervals: list[tuple[float, float]], low: float, high: float) -> float:
    """Length of the union of `intervals` clipped to [low, high]."""
    total, reach = 0.0, low
    for start, end in sorted(intervals):
        start, end = max(start, reach), min(end, high)
        if end > start:
            total += end - start
            reach = end
    return total


# ---- process and machine figures ------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_figures(pid: int) -> dict[str, float]:
    """CPU seconds (user + system, all threads) and peak/current RSS in MB: psutil when it is
    installed, /proc otherwise (VmHWM, the peak, only /proc has)."""
    figures: dict[str, float] = {}
    try:
        import psutil  # type: ignore[import-untyped]

        proc = psutil.Process(pid)
        cpu = proc.cpu_times()
        figures["cpu_s"] = float(cpu.user + cpu.system)
        figures["rss_mb"] = proc.memory_info().rss / 2**20
    except Exception:  # noqa: BLE001 - not installed, or the process is gone
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            figures["cpu_s"] = (int(fields[11]) + int(fields[12])) / _TICK
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmHWM", "VmRSS"):
                mb = int(value.split()[0]) / 1024
                figures["peak_rss_mb" if name == "VmHWM" else "rss_mb"] = mb
    return figures


def machine_ticks() -> tuple[float, float]:
    """(busy, total) CPU ticks of the whole machine since boot, from /proc/stat."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return 0.0, 0.0
    values = [float(v) for v in first]
    idle = values[3] + (values[4] if len(values) > 4 else 0.0)
    return sum(values) - idle, sum(values)


class Meter:
    """CPU and memory of the stack's processes (and this one) over a stretch of time."""

    def __init__(self, stack: DevStack) -> None:
        self.pids = {name: p.pid for name, p in stack.procs.items() if name in PROCESSES}
        self.pids["bench"] = os.getpid()

    def snapshot(self) -> dict[str, Any]:
        return {
            "at": time.perf_counter(),
            "machine": machine_ticks(),
            "procs": {name: process_figures(pid) for name, pid in self.pids.items()},
        }

    @staticmethod
    def delta(before: dict[str, Any], after: dict[str, Any], bookings: int) -> dict[str, Any]:
        wall = after["at"] - before["at"]
        busy = after["machine"][0] - before["machine"][0]
        total = after["machine"][1] - before["machine"][1]
        procs: dict[str, Any] = {}
        for name, end in after["procs"].items():
            start = before["procs"].get(name, {})
            cpu = end.get("cpu_s", 0.0) - start.get("cpu_s", 0.0)
            procs[name] = {
                "cpu_s": round(cpu, 3),
                "cpu_ms_per_booking": round(cpu * 1000 / max(bookings, 1), 2),
                "cores_used": round(cpu / wall, 3) if wall > 0 else None,
                "peak_rss_mb": round(end.get("peak_rss_mb", end.get("rss_mb", 0.0)), 1),
            }
        cores = os.cpu_count() or 1
        ours = sum(p["cpu_s"] for p in procs.values())
        machine = 100 * busy / total if total else None
        stack = 100 * ours / (wall * cores) if wall > 0 else None
        return {
            "wall_s": round(wall, 3),
            "cores": cores,
            "machine_cpu_busy_pct": None if machine is None else round(machine, 1),
            # the stack's processes and the bench itself; the rest is someone else's load
            "stack_cpu_pct": None if stack is None else round(stack, 1),
            "other_cpu_pct": (
                None if machine is None or stack is None else round(max(0.0, machine - stack), 1)
            ),
            "processes": procs,
        }


# ---- statistics -----------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summary(values: Sequence[float]) -> dict[str, float | None]:
    def r(v: float | None) -> float | None:
        return None if v is None else round(v, 1)

    return {
        "p50": r(percentile(values, 50)),
        "p95": r(percentile(values, 95)),
        "p99": r(percentile(values, 99)),
        "mean": r(statistics.fmean(values)) if values else None,
        "min": r(min(values)) if values else None,
        "max": r(max(values)) if values else None,
    }


# ---- the runs -------------------------------------------------------------------------------


class Bench:
    def __init__(self, config: BenchConfig, stack: DevStack, console: Console) -> None:
        self.config = config
        self.stack = stack
        self.settings = stack.settings
        self.console = console
        self.refs = RefMaker()
        self.meter = Meter(stack)
        self.client: Client | None = None
        self.bot: CrewBot | None = None

    async def book(self, concurrency: int) -> Sample:
        """One booking, start to result, the crew bot confirming on the way."""
        assert self.client is not None and self.bot is not None
        ref = self.refs()
        booking = validate(booking_data(ref))
        sample = Sample(ref, contract.workflow_id_for(ref), concurrency)
        self.bot.expect(sample.workflow_id, [m.id for _, m in booking.members])
        sample.t_start = time.time()
        try:
            handle: WorkflowHandle[Any, Any] = await start_booking(
                self.client, self.settings, booking
            )
            await settled(handle, timeout=self.config.booking_timeout_seconds)
            sample.ok = True
        except Exception as exc:  # noqa: BLE001 - counted as a failed booking
            sample.error = f"{type(exc).__name__}: {exc}"
            self.bot.forget(sample.workflow_id)
        sample.t_done = time.time()
        return sample

    async def phase(self, concurrency: int, bookings: int) -> tuple[list[Sample], dict[str, Any]]:
        client = self.client
        assert client is not None
        for target in PROXY_TARGETS:
            self.stack.reset_fault_counters(target)
        queue = iter(range(bookings))
        samples: list[Sample] = []

        async def slot() -> None:
            for _ in queue:
                samples.append(await self.book(concurrency))

        before = self.meter.snapshot()
        await asyncio.gather(*(slot() for _ in range(min(concurrency, bookings))))
        after = self.meter.snapshot()
        figures = Meter.delta(before, after, bookings)
        requests = {t: int(self.stack.fault_counters(t).get("requests", 0)) for t in PROXY_TARGETS}
        figures["proxy_requests"] = requests
        figures["proxy_requests_per_booking"] = round(sum(requests.values()) / bookings, 2)
        # after the measured stretch: reading histories costs the server CPU too
        await asyncio.gather(*(read_history_times(client, s) for s in samples if s.ok))
        return samples, figures

    async def measure_chain(self) -> dict[str, int]:
        """One booking alone: how many requests each proxy target carried."""
        for target in PROXY_TARGETS:
            self.stack.reset_fault_counters(target)
        sample = await self.book(1)
        if not sample.ok:
            raise RuntimeError(f"the chain-measuring booking failed: {sample.error}")
        counts = {t: int(self.stack.fault_counters(t).get("requests", 0)) for t in PROXY_TARGETS}
        return counts

    def sequential_baseline(self) -> list[float]:
        """The same activities, one after another, no Temporal: ms per booking."""
        ws = self.stack.worker_settings
        http = wiring.http_client(8)
        try:
            fns = wiring.activities(ws, wiring.aws_clients(ws, max_pool=8), http)
            acts: dict[str, Any] = {getattr(f, "__name__", ""): f for f in fns}
            runs = [self._sequential_once(acts, ws) for _ in range(self.config.baseline_runs + 1)]
        finally:
            http.close()
        return runs[1:]  # the first run warms the secret cache and the connections

    def _sequential_once(self, acts: dict[str, Any], ws: Settings) -> float:
        ref = self.refs()
        raw = booking_data(ref)
        wf = f"bench-sequential-{ref}"
        started = time.perf_counter()
        booking: Booking = acts["validate_booking"](raw)
        view = booking.crew_view(ws.guest_page_url(booking.page_slug))
        entry = acts["create_calendar_entry"](
            CalendarEntryRequest(idempotency_key=f"{wf}:calendar", booking=booking)
        )
        check = acts["check_scc_service_key"]()
        if not check.ok:
            raise RuntimeError(f"SCC service key check failed: {check.reason}")
        event = acts["create_scc_event"](SccEventRequest(idempotency_key=f"{wf}:scc", charter=view))
        acts["redact_scc_revenue"](
            RedactionRequest(event_id=event.event_id, amounts=booking.financials().amounts())
        )
        page = acts["publish_guest_page"](GuestPageRequest(charter=view, event_id=event.event_id))
        acts["invalidate_guest_page"](
            InvalidationRequest(
                idempotency_key=wf, slug=booking.page_slug, content_sha256=page.content_sha256
            )
        )
        for role, member in booking.members:
            acts["send_crew_email"](
                CrewEmailRequest(
                    idempotency_key=f"{wf}:invite:1:{member.id}",
                    workflow_id=wf,
                    member=member,
                    role=role,
                    charter=view,
                )
            )
        answers = [
            CrewAnswer(crew_id=m.id, name=m.name, role=role, answer="accepted", by="bench")
            for role, m in booking.members
        ]
        acts["send_captain_summary"](
            CaptainSummaryRequest(
                idempotency_key=f"{wf}:captain-summary:1",
                booking=booking,
                charter=view,
                confirmations=answers,
            )
        )
        acts["update_calendar_entry"](
            CalendarStatusRequest(entry_id=entry.entry_id, status="confirmed")
        )
        return (time.perf_counter() - started) * 1000

    async def run(self) -> dict[str, Any]:
        cfg = self.config
        spec = f"delay={cfg.latency_ms:g}"
        self.client = await connect(self.settings)
        self.bot = CrewBot(self.client, cfg.crew_poll_seconds)
        bot_task = asyncio.create_task(self.bot.run())
        try:
            for target in PROXY_TARGETS:
                self.stack.set_faults(target, spec)
            self.console.print(f"proxies: {spec} on {', '.join(PROXY_TARGETS)}")
            for _ in range(cfg.warmup):
                warm = await self.book(1)
                if not warm.ok:
                    raise RuntimeError(f"warm-up booking failed: {warm.error}")
            measured = await self.measure_chain()
            self.console.print(f"requests per booking (measured): {measured}")
            baseline = await asyncio.to_thread(self.sequential_baseline)
            self.console.print(
                f"sequential baseline: p50 {percentile(baseline, 50):.0f} ms "
                f"over {len(baseline)} runs"
            )
            phases = []
            for concurrency, bookings in cfg.phases():
                self.console.print(f"C={concurrency}: {bookings} bookings…")
                samples, figures = await self.phase(concurrency, bookings)
                phases.append(self._phase_report(concurrency, samples, figures))
                self._print_phase(phases[-1])
        finally:
            bot_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await bot_task
        return self._report(measured, baseline, phases)

    def _phase_report(
        self, concurrency: int, samples: list[Sample], figures: dict[str, Any]
    ) -> dict[str, Any]:
        ok = [s for s in samples if s.ok]
        latencies = [s.latency_ms for s in ok]
        wall = figures["wall_s"]
        return {
            "concurrency": concurrency,
            "bookings": len(samples),
            "completed": len(ok),
            "failed": len(samples) - len(ok),
            "errors": sorted({s.error for s in samples if s.error})[:5],
            "wall_s": wall,
            "bookings_per_s": round(len(ok) / wall, 2) if wall else None,
            "latency_ms": summary(latencies),
            "total_with_crew_wait_ms": summary([s.total_ms for s in ok]),
            "to_awaiting_crew_ms": summary([v for s in ok if (v := s.to_awaiting_ms) is not None]),
            "crew_wait_ms": summary([s.crew_wait_ms for s in ok]),
            "awaiting_crew_to_complete_ms": summary(
                [s.total_ms - v for s in ok if (v := s.to_awaiting_ms) is not None]
            ),
            "after_crew_ms": summary([v for s in ok if (v := s.after_crew_ms) is not None]),
            # where the latency goes: inside activities (the injected delays plus the calls'
            # own cost) versus orchestration around them (workflow tasks, dispatch, start/result)
            "in_activities_ms": summary([v for s in ok if (v := s.in_activities_ms) is not None]),
            "history_per_booking": {
                key: round(statistics.fmean(s.events.get(key, 0) for s in ok), 2)
                for key in (ok[0].events if ok else {})
            },
            "orchestration_ms": summary(
                [s.latency_ms - v for s in ok if (v := s.in_activities_ms) is not None]
            ),
            **{k: v for k, v in figures.items() if k != "wall_s"},
            "latencies_ms": [round(v, 1) for v in latencies],
        }

    def _print_phase(self, phase: dict[str, Any]) -> None:
        lat = phase["latency_ms"]
        procs = phase["processes"]
        self.console.print(
            f"  C={phase['concurrency']}: {phase['completed']}/{phase['bookings']} in "
            f"{phase['wall_s']:.1f} s = {phase['bookings_per_s']} bookings/s · p50 {lat['p50']} "
            f"p95 {lat['p95']} p99 {lat['p99']} ms · CPU busy {phase['machine_cpu_busy_pct']}% "
            f"(worker {procs['worker']['cores_used']}, temporal {procs['temporal']['cores_used']}"
            f", moto {procs['moto']['cores_used']} cores)"
        )

    def _report(
        self, measured: dict[str, int], baseline: list[float], phases: list[dict[str, Any]]
    ) -> dict[str, Any]:
        cfg = self.config
        by_c = {p["concurrency"]: p for p in phases}
        bound = len(CRITICAL_PATH) * cfg.latency_ms
        c1 = by_c.get(1)
        p50_c1 = c1["latency_ms"]["p50"] if c1 else None
        sequential_p50 = percentile(baseline, 50)
        c50 = by_c.get(GOAL_CONCURRENCY)
        expected = expected_calls_per_target()
        report: dict[str, Any] = {
            "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
            "latency_ms_injected": cfg.latency_ms,
            "bound_ms": bound,
            "critical_path_calls": len(CRITICAL_PATH),
            "critical_path": [
                {"activity": activity, "target": call.target, "call": call.what}
                for activity, call in CRITICAL_PATH
            ],
            "calls_per_booking_expected": {**expected, "total": sum(expected.values())},
            "calls_per_booking_measured": {**measured, "total": sum(measured.values())},
            "p50_ms_c1": p50_c1,
            "p95_ms_c1": c1["latency_ms"]["p95"] if c1 else None,
            "p99_ms_c1": c1["latency_ms"]["p99"] if c1 else None,
            "p50_over_bound": round(p50_c1 / bound, 3) if p50_c1 and bound else None,
            "sequential_p50_ms": round(sequential_p50, 1) if sequential_p50 else None,
            "sequential_runs_ms": [round(v, 1) for v in baseline],
            "sequential_bound_ms": len(all_calls()) * cfg.latency_ms,
            "p50_c1_over_sequential": (
                round(p50_c1 / sequential_p50, 3) if p50_c1 and sequential_p50 else None
            ),
            "bookings_per_s_c50": c50["bookings_per_s"] if c50 else None,
            "bookings_per_s_max": max((p["bookings_per_s"] or 0.0) for p in phases),
            "results": phases,
            "crew_confirmation": (
                "crew_confirmation signals sent through the Temporal client as soon as a "
                "visibility query shows BookingStage=awaiting-crew (all invitations sent); "
                "crew_wait_ms is that delay, excluded from latency_ms"
            ),
            "crew_bot": {
                "visibility_queries": self.bot.queries if self.bot else 0,
                "signals": self.bot.signals if self.bot else 0,
                "errors": (self.bot.errors[:5] if self.bot else []),
            },
            "config": {
                **{k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()},
                "state_dir": str(self.stack.state_dir),
                "worker_threads": self.settings.worker_threads,
                "cpu_count": os.cpu_count(),
            },
        }
        report["goals"] = goals(report, by_c)
        return report


def goals(report: dict[str, Any], by_c: dict[int, dict[str, Any]]) -> dict[str, Any]:
    bound = report["bound_ms"]
    p50 = report["p50_ms_c1"]
    seq = report["sequential_p50_ms"]

    def verdict(ok: bool | None) -> str:
        return "n/a" if ok is None else ("PASS" if ok else "MISS")

    within = None if p50 is None else p50 <= GOAL_C1_OVER_BOUND * bound
    faster = None if p50 is None or seq is None else p50 < seq
    c50 = by_c.get(GOAL_CONCURRENCY)
    throughput: dict[str, Any] = {"target": f">= {GOAL_BOOKINGS_PER_S:g} bookings/s at C=50"}
    if c50 is None:
        throughput["status"] = "n/a"
    else:
        rate = c50["bookings_per_s"] or 0.0
        procs = c50["processes"]
        busy = c50["machine_cpu_busy_pct"] or 0.0
        other = c50["other_cpu_pct"] or 0.0
        stack = {k: v for k, v in procs.items() if k != "bench"}
        top = max(stack, key=lambda k: stack[k]["cores_used"] or 0.0)
        cpu = {k: v["cpu_ms_per_booking"] for k, v in stack.items()}
        total_ms = sum(cpu.values()) + procs.get("bench", {}).get("cpu_ms_per_booking", 0.0)
        cores = c50["cores"]
        temporal_ceiling = cores * 1000 / cpu["temporal"] if cpu.get("temporal") else None
        throughput.update(
            {
                "value": rate,
                "machine_cpu_busy_pct": busy,
                "other_cpu_pct": other,
                "top_cpu_process": top,
                "cores_used": {k: v["cores_used"] for k, v in procs.items()},
                "cpu_ms_per_booking": cpu,
                # what this machine could do if one part had every core to itself
                "temporal_ceiling_bookings_per_s": (
                    round(temporal_ceiling, 1) if temporal_ceiling else None
                ),
                "machine_ceiling_bookings_per_s": (
                    round(cores * 1000 / total_ms, 1) if total_ms else None
                ),
            }
        )
        saturated = busy >= 90.0
        if rate >= GOAL_BOOKINGS_PER_S:
            throughput["status"] = "PASS"
        elif saturated and other >= 15.0:
            throughput["status"] = "MISS"
            throughput["note"] = (
                f"inconclusive: {other:.0f}% of the CPU went to processes outside the stack"
            )
        elif saturated and top == "temporal":
            throughput["status"] = "CEILING"
            throughput["note"] = (
                f"below the goal, CPU-bound with the Temporal server first: every core busy "
                f"({busy:.0f}%), the server the largest consumer ({cpu['temporal']:.0f} ms CPU "
                f"per booking, worker {cpu.get('worker', 0):.0f}); alone on all {cores} cores "
                f"the server would top out at {temporal_ceiling:.0f} bookings/s"
            )
        else:
            throughput["status"] = "MISS"
            throughput["note"] = (
                f"CPU-bound: {busy:.0f}% busy; the largest consumer is {top}"
                if saturated
                else f"CPU only {busy:.0f}% busy: not CPU-bound"
            )
    return {
        "c1_p50_within_bound": {
            "target": f"p50 <= {GOAL_C1_OVER_BOUND} x {bound:g} ms",
            "value": p50,
            "status": verdict(within),
        },
        "c1_p50_below_sequential": {
            "target": f"p50 < sequential p50 {seq} ms",
            "value": p50,
            "status": verdict(faster),
        },
        "c50_throughput": throughput,
    }


# ---- output ---------------------------------------------------------------------------------


def print_report(console: Console, report: dict[str, Any]) -> None:
    if not console.is_terminal and console.width < 150:
        console = Console(file=console.file, width=150)
    table = Table(
        title=f"charters bench · every external call +{report['latency_ms_injected']:g} ms"
    )
    for name in (
        "C",
        "done",
        "bookings/s",
        "p50",
        "p95",
        "p99",
        "→awaiting",
        "crew wait",
        "awaiting→done",
        "worker ms/bk",
        "temporal ms/bk",
        "CPU busy (stack)",
    ):
        table.add_column(name, justify="right")
    for p in report["results"]:
        lat, procs = p["latency_ms"], p["processes"]
        table.add_row(
            str(p["concurrency"]),
            f"{p['completed']}/{p['bookings']}",
            f"{p['bookings_per_s']}",
            f"{lat['p50']}",
            f"{lat['p95']}",
            f"{lat['p99']}",
            f"{p['to_awaiting_crew_ms']['p50']}",
            f"{p['crew_wait_ms']['p50']}",
            f"{p['awaiting_crew_to_complete_ms']['p50']}",
            f"{procs['worker']['cpu_ms_per_booking']}",
            f"{procs['temporal']['cpu_ms_per_booking']}",
            f"{p['machine_cpu_busy_pct']}% ({p['stack_cpu_pct']}%)",
        )
    console.print(table)
    noisy = max((p["other_cpu_pct"] or 0.0) for p in report["results"])
    if noisy >= 10:
        console.print(
            f"[yellow]note:[/] up to {noisy:.0f}% of the machine's CPU went to processes outside "
            "the bench stack during a run: these figures are lower than a quiet machine gives"
        )
    console.print(
        "latencies in ms, start→result less the crew wait; →awaiting, crew wait and "
        "awaiting→done are p50s"
    )
    measured, expected = report["calls_per_booking_measured"], report["calls_per_booking_expected"]
    console.print(
        f"critical path {report['critical_path_calls']} calls × "
        f"{report['latency_ms_injected']:g} ms = bound {report['bound_ms']:g} ms · "
        f"calls per booking measured {measured} (expected {expected}) · "
        f"sequential baseline p50 {report['sequential_p50_ms']} ms"
    )
    for name, goal in report["goals"].items():
        colour = {"PASS": "green", "MISS": "red"}.get(goal["status"], "yellow")
        extra = f" ({goal['note']})" if goal.get("note") else ""
        console.print(
            f"[{colour}]{goal['status']}[/] {name}: {goal['target']}, got {goal.get('value')}"
            f"{extra}"
        )


def plot(report: dict[str, Any], path: Path) -> bool:
    """Latency histogram (the lowest concurrency, against the bound), latency distribution per
    concurrency, throughput and CPU vs concurrency. False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        return False
    results = [p for p in report["results"] if p["latencies_ms"]]
    if not results:
        return False
    fig, (hist, cdf, tput) = plt.subplots(1, 3, figsize=(17, 4.8))
    bound, seq = report["bound_ms"], report["sequential_p50_ms"]
    marks = [(bound, "black", "--", f"bound {bound:g} ms")]
    marks.append((GOAL_C1_OVER_BOUND * bound, "grey", ":", f"{GOAL_C1_OVER_BOUND:g} × bound"))
    if seq:
        marks.append((seq, "red", "-.", f"sequential p50 {seq:.0f} ms"))

    first = results[0]
    hist.hist(first["latencies_ms"], bins=20, color="tab:blue", alpha=0.75)
    for x, colour, style, label in marks:
        hist.axvline(x, color=colour, linestyle=style, label=label)
    hist.set_xlabel("latency: start→result less the crew wait (ms)")
    hist.set_ylabel("bookings")
    hist.yaxis.set_major_locator(MaxNLocator(integer=True))
    hist.set_title(
        f"C={first['concurrency']}: p50 {first['latency_ms']['p50']:.0f} ms "
        f"(+{report['latency_ms_injected']:g} ms per external call)"
    )
    hist.legend(fontsize="small")

    for p in results:
        values = sorted(p["latencies_ms"])
        share = [(i + 1) / len(values) for i in range(len(values))]
        cdf.step(values, share, where="post", label=f"C={p['concurrency']}")
    for x, colour, style, _ in marks[:1]:
        cdf.axvline(x, color=colour, linestyle=style)
    cdf.set_xscale("log")
    cdf.set_xlabel("latency (ms, log scale)")
    cdf.set_ylabel("share of bookings")
    cdf.set_title("Latency distribution per concurrency")
    cdf.legend(fontsize="small")

    cs = [p["concurrency"] for p in report["results"]]
    rates = [p["bookings_per_s"] or 0 for p in report["results"]]
    tput.plot(cs, rates, marker="o", color="tab:blue", label="bookings/s")
    tput.axhline(GOAL_BOOKINGS_PER_S, color="grey", linestyle=":", label="goal at C=50")
    for c, r in zip(cs, rates, strict=True):
        tput.annotate(f"{r:g}", (c, r), textcoords="offset points", xytext=(0, 6), ha="center")
    tput.set_xlabel("concurrency (bookings in flight)")
    tput.set_ylabel("bookings/s")
    tput.set_ylim(bottom=0)
    tput.set_title("Throughput and CPU vs concurrency")
    busy = tput.twinx()
    busy.plot(
        cs,
        [p["machine_cpu_busy_pct"] or 0 for p in report["results"]],
        marker="s",
        color="tab:red",
        alpha=0.6,
        label="machine CPU busy %",
    )
    busy.set_ylim(0, 105)
    busy.set_ylabel("CPU busy (%)")
    lines = tput.get_legend_handles_labels()
    more = busy.get_legend_handles_labels()
    tput.legend(lines[0] + more[0], lines[1] + more[1], fontsize="small", loc="center right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def write_results(report: dict[str, Any], out_dir: Path, make_plot: bool = True) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = out_dir / f"{stamp}.json"
    png = out_dir / f"{stamp}.png"
    report["png"] = str(png) if make_plot and plot(report, png) else None
    path.write_text(json.dumps(report, indent=1))
    return path


# ---- entry point ----------------------------------------------------------------------------


def run_bench(config: BenchConfig | None = None, console: Console | None = None) -> int:
    """Starts a fresh stack, runs the bench, prints and writes the results, stops the stack.
    Returns 0 when the bench ran (goals missed included), 1 when it could not run."""
    config = config or BenchConfig()
    console = console or Console()
    try:
        config.phases()
    except ValueError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        return 2
    base = config.state_base or default_state_base()
    state = Path(tempfile.mkdtemp(prefix="charters-bench-", dir=base))
    console.print(f"starting a fresh stack in {state} …")
    try:
        stack = start_stack(state)
    except Exception as exc:  # noqa: BLE001 - one line, logs kept
        console.print(f"[bold red]bench failed:[/] cannot start the stack: {exc} (logs: {state})")
        return 1
    ok = False
    try:
        report = asyncio.run(Bench(config, stack, console).run())
        print_report(console, report)
        path = write_results(report, config.out_dir, config.plot)
        console.print(f"results: {path}" + (f" · plot: {report['png']}" if report["png"] else ""))
        ok = True
        return 0
    except Exception as exc:  # noqa: BLE001 - one line, logs kept
        console.print(f"[bold red]bench failed:[/] {exc} (stack logs: {stack.log_dir})")
        return 1
    finally:
        stack.stop()
        if ok and not config.keep_state:
            shutil.rmtree(state, ignore_errors=True)


def start_stack(state: Path, attempts: int = 3) -> DevStack:
    """A stack on free ports. A port found free can be taken by another process before the
    stack binds it (other stacks on this machine pick theirs the same way): then the part that
    lost the race fails to come up, and the stack starts again on new ports."""
    for attempt in range(1, attempts + 1):
        stack = DevStack(bench_settings(state / f"stack-{attempt}"), fresh=True)
        try:
            return stack.start()  # stops what it started when a part fails
        except RuntimeError:
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")
