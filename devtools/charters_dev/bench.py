"""`charters bench` / `make bench`: booking latency, throughput and CPU on a fresh embedded stack.

What it does, in order:

1. Starts its own `DevStack` (Temporal dev server, moto, stand-ins, fault proxy, confirm
   endpoint; workers come per variant) on free ports in a temporary state dir, and sets the proxy
   spec `delay=L` on all three proxy targets (aws, calendar, scc): every external call the worker
   makes waits L ms.
2. For each variant (`runner:workers[:steps]`, see bench_workers.py; default: the heaviest
   configuration, `sandboxed:1:regular`, then the product's runner with the other kind of steps
   (local-first, opt-in), then the product (its runner, every step regular) with one and two
   processes)
   starts its workers and warms them up. With the first variant it also books one charter alone
   and counts the requests each proxy target saw (`calls_per_booking_measured`), and runs the
   sequential baseline (bench_baseline.py).
3. For each concurrency C (default 1, 10, 50) books N charters with at most C in flight
   (closed loop: a slot starts its next booking when its last one completes), measuring the CPU
   seconds every process of the stack used (per booking: comparable under other load, which wall
   time is not) and reading each booking's history afterwards.

The crew. Confirmations are automated, and that automation is not the pipeline: a "crew bot"
lists the bookings whose `BookingStage` search attribute is `awaiting-crew` (one visibility query
per tick for all bookings in flight) and signals `crew_confirmation` (accept) for every member
through the Temporal client: the signal form of the workflow's update, what the confirmation
endpoint does once a crew member presses the button in a magic-link email, without waiting for
the verdict. The workflow enters `awaiting-crew` only after every invitation has been sent.

The booking's workflow lives until after the trip (a month after the bench's start): a booking
counts as done when its history sets `BookingStage=confirmed` (the captain's summary sent, the
calendar entry confirmed), which the bot reports.

Timings of one booking, from the client's clock and the workflow's history (same host clock):
`total` is start_workflow call -> the history event that set `BookingStage=confirmed`;
`to_awaiting_crew` (also `crew_notified_ms`) is start -> the event that set
`BookingStage=awaiting-crew`, the time a guest waits for the crew to be asked; `crew_wait` is
that event -> the last `crew_confirmation` signal (the automation's delay: the human part in
production); `latency` = `total - crew_wait` is the pipeline, and the p50/p95/p99 reported
everywhere are of it unless named otherwise.

Bounds: the critical path of one booking is the longest chain of dependent external calls
(bench_model.py); with every call delayed L ms no implementation can finish faster than
`len(CRITICAL_PATH) * L` (`bound_ms`), nor notify the crew faster than
`len(CREW_NOTIFIED_PATH) * L` (`crew_notified_bound_ms`).

Goals (bench_report.py; reported, never failing the run) are judged on the product's own
configuration (`Settings().workflow_runner` and `local_activities`); the first variant is
"before".

Results: a Rich table on the console, `bench-results/<timestamp>.json` and `<timestamp>.png`
(needs the `bench` extra: matplotlib).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from temporalio.client import Client, WorkflowHandle

from charters import contract
from charters.starter.book import booking_options, start_booking, validate
from charters.temporal_client import connect
from charters_dev.bench_baseline import sequential_baseline
from charters_dev.bench_history import (
    CrewBot,
    RefMaker,
    Sample,
    booking_data,
    confirmed_or_ended,
    read_history_times,
)
from charters_dev.bench_meter import Meter, percentile
from charters_dev.bench_model import (
    CRITICAL_PATH,
    PROXY_TARGETS,
    all_calls,
)
from charters_dev.bench_plot import write_results
from charters_dev.bench_print import print_report
from charters_dev.bench_report import phase_report, run_report
from charters_dev.bench_workers import Variant, WorkerPool, default_variants
from charters_dev.isolated import start_isolated_stack
from charters_dev.stack import DevStack

__all__ = ["CRITICAL_PATH", "BenchConfig", "all_calls", "run_bench"]


# ---- configuration --------------------------------------------------------------------------


@dataclass
class BenchConfig:
    """Defaults keep `make bench` to a few minutes on two cores."""

    concurrency: list[int] = field(default_factory=lambda: [1, 10, 50])
    bookings: list[int] = field(default_factory=lambda: [6, 30, 100])
    variants: list[str] = field(default_factory=default_variants)
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

    def parsed_variants(self) -> list[Variant]:
        if not self.variants:
            raise ValueError("at least one variant")
        return [Variant.parse(v) for v in self.variants]


def default_state_base() -> Path | None:
    """/dev/shm when writable: the dev server's SQLite then never waits for the disk to flush,
    which on a small VM costs more than the pipeline does (about 20% of the throughput here).
    The bench measures the product, not this machine's fsync; `--state-base` picks another."""
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else None


# ---- the runs -------------------------------------------------------------------------------


class Bench:
    def __init__(self, config: BenchConfig, stack: DevStack, console: Console) -> None:
        self.config = config
        self.stack = stack
        self.settings = stack.settings
        self.console = console
        self.refs = RefMaker()
        self.workers = WorkerPool(stack)
        self.meter = Meter(stack, lambda: self.workers.pids)
        self.client: Client | None = None
        self.bot: CrewBot | None = None
        self.variant = Variant("unsandboxed")

    async def book(self, concurrency: int) -> Sample:
        """One booking, start to result, the crew bot confirming on the way."""
        assert self.client is not None and self.bot is not None
        ref = self.refs()
        booking = validate(booking_data(ref))
        sample = Sample(ref, contract.workflow_id_for(ref), concurrency)
        confirmed = self.bot.expect(sample.workflow_id, ref, [m.id for _, m in booking.members])
        sample.t_start = time.time()
        try:
            options = booking_options(self.settings, booking).model_copy(
                update={"local_activities": self.variant.local_activities}
            )
            handle: WorkflowHandle[Any, Any] = await start_booking(
                self.client, self.settings, booking, options
            )
            await asyncio.wait_for(
                confirmed_or_ended(confirmed, handle), self.config.booking_timeout_seconds
            )
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
        assert self.bot is not None
        self.bot.new_phase()
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
        return {t: int(self.stack.fault_counters(t).get("requests", 0)) for t in PROXY_TARGETS}

    async def start_variant(self, variant: Variant) -> None:
        """Its workers up (the previous variant's stopped), warmed up: the first bookings of a
        fresh worker import and cache what the rest reuse."""
        self.variant = variant
        await asyncio.to_thread(self.workers.start, variant)
        for _ in range(self.config.warmup):
            warm = await self.book(1)
            if not warm.ok:
                raise RuntimeError(f"warm-up booking ({variant.name}) failed: {warm.error}")

    async def run(self) -> dict[str, Any]:
        cfg = self.config
        spec = f"delay={cfg.latency_ms:g}"
        self.client = await connect(self.settings)
        self.bot = CrewBot(self.client, cfg.crew_poll_seconds)
        bot_task = asyncio.create_task(self.bot.run())
        measured: dict[str, int] = {}
        baseline: list[float] = []
        phases: list[dict[str, Any]] = []
        try:
            for target in PROXY_TARGETS:
                self.stack.set_faults(target, spec)
            self.console.print(f"proxies: {spec} on {', '.join(PROXY_TARGETS)}")
            for index, variant in enumerate(cfg.parsed_variants()):
                self.console.print(f"variant {variant.name}: starting its workers…")
                await self.start_variant(variant)
                if index == 0:
                    measured = await self.measure_chain()
                    self.console.print(f"requests per booking (measured): {measured}")
                    baseline = await asyncio.to_thread(
                        sequential_baseline,
                        self.stack.worker_settings,
                        self.refs,
                        cfg.baseline_runs,
                    )
                    p50 = percentile(baseline, 50) or 0.0
                    self.console.print(
                        f"sequential baseline: p50 {p50:.0f} ms over {len(baseline)} runs"
                    )
                for concurrency, bookings in cfg.phases():
                    self.console.print(f"{variant.name} C={concurrency}: {bookings} bookings…")
                    samples, figures = await self.phase(concurrency, bookings)
                    phases.append(phase_report(variant, concurrency, samples, figures))
                    self._print_phase(phases[-1])
        finally:
            bot_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await bot_task
            await asyncio.to_thread(self.workers.stop)
        return run_report(
            self.config,
            measured,
            baseline,
            phases,
            self.bot,
            {
                "state_dir": str(self.stack.state_dir),
                "worker_threads": self.settings.worker_threads,
            },
        )

    def _print_phase(self, phase: dict[str, Any]) -> None:
        lat = phase["latency_ms"]
        procs = phase["processes"]
        cpu = phase["cpu_ms_per_booking"]
        self.console.print(
            f"  {phase['variant']} C={phase['concurrency']}: {phase['completed']}/"
            f"{phase['bookings']} in {phase['wall_s']:.1f} s = {phase['bookings_per_s']} "
            f"bookings/s · p50 {lat['p50']} p95 {lat['p95']} ms · CPU ms/booking worker "
            f"{cpu['worker']} server {cpu['server']} emulators {cpu['emulators']} · busy "
            f"{phase['machine_cpu_busy_pct']}% (worker {procs['worker']['cores_used']}, "
            f"temporal {procs['temporal']['cores_used']} cores)"
        )


# ---- entry point ----------------------------------------------------------------------------


def run_bench(config: BenchConfig | None = None, console: Console | None = None) -> int:
    """Starts a fresh stack, runs the bench, prints and writes the results, stops the stack.
    Returns 0 when the bench ran (goals missed included), 1 when it could not run."""
    config = config or BenchConfig()
    console = console or Console()
    try:
        config.phases()
        config.parsed_variants()
    except ValueError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        return 2
    base = config.state_base or default_state_base()
    state = Path(tempfile.mkdtemp(prefix="charters-bench-", dir=base))
    console.print(f"starting a fresh stack in {state} …")
    try:
        stack = start_isolated_stack(state, worker=False)
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
