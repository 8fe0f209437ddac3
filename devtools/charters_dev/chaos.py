"""`charters chaos` / `make chaos`: many bookings while every layer under them fails; then every
effect is counted in the emulated systems.

What it does, in order:

1. Starts its own `DevStack` on free ports in a temporary state dir (the CLI), or uses the stack
   it is given (the short test gives it a stack of its own: the Temporal server is killed).
2. Sets transient faults on all three proxy targets (aws, calendar, scc): with probability
   `fault_rate` a request gets a 500, a 503, throttling, a connection reset (all before the
   request reaches the upstream), or a slow answer. Never `after=1` on aws: SES has no
   idempotency token and a lost answer after a send is the one documented duplicate window.
3. Replaces the stack's worker by a pool of `workers` processes (`chaos_layers.WorkerPool`).
4. Starts `bookings` bookings, at most `concurrency` in flight, and plays their crew
   (`chaos_driver.Driver`).
5. Meanwhile runs the disruption schedule (`chaos_config.disruption_schedule`): the Temporal dev
   server killed with SIGKILL and restarted on the same port and SQLite file, a worker killed
   with SIGKILL and replaced, a rolling deploy (each worker replaced, the old one drained with
   SIGTERM), each at a random moment.
6. Turns the faults off, waits for every result, then counts every effect FROM THE EMULATED
   SYSTEMS (`chaos_ledger`) and reports (`chaos_report`). Exit status 1 on any duplicate, loss,
   missing effect or mismatch.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from charters import contract
from charters.observability import quiet_runtime
from charters.starter.book import validate, with_page_slug
from charters.temporal_client import connect
from charters.worker.run_ahead import REFUSED_LOG
from charters.worker.wiring import aws_clients
from charters_dev.chaos_config import (
    PROXY_TARGETS,
    ChaosConfig,
    Tracked,
    booking_data,
    chaos_refs,
    disruption_schedule,
)
from charters_dev.chaos_driver import Driver
from charters_dev.chaos_effects import ledger_takeovers
from charters_dev.chaos_faults import PermanentFaults, holding_check
from charters_dev.chaos_layers import Disruptor, TemporalServer, WorkerPool
from charters_dev.chaos_ledger import read_ledger
from charters_dev.chaos_operators import make_plans
from charters_dev.chaos_report import build_report, print_report, write_report
from charters_dev.isolated import QUICK_RETRIES, start_isolated_stack, without_charters_env
from charters_dev.stack import DevStack

__all__ = [
    "PROXY_TARGETS",
    "ChaosConfig",
    "ledger_takeovers",
    "print_report",
    "run_chaos",
    "run_chaos_cli",
]


def faults_off(stack: DevStack) -> None:
    for target in PROXY_TARGETS:
        with contextlib.suppress(Exception):
            stack.set_faults(target, "")


async def run_chaos(
    stack: DevStack, config: ChaosConfig, console: Console | None = None
) -> dict[str, Any]:
    """The run against a started stack; returns the report (see `print_report`). Leaves the
    faults off, the Temporal server up and the stack's own worker running."""
    out = console or Console(quiet=True)
    settings = stack.settings
    client = await connect(settings, runtime=quiet_runtime())
    aws = aws_clients(settings)  # straight to moto: the ledger is read without faults
    tracked = [
        Tracked(ref, with_page_slug(validate(booking_data(ref))), contract.workflow_id_for(ref))
        for ref in chaos_refs(config.bookings)
    ]
    for t, plan in zip(
        tracked, make_plans(len(tracked), config.seed, config.operator_share), strict=True
    ):
        t.plan = plan
    driver = Driver(client, settings, config)
    server = TemporalServer(stack)
    pool = WorkerPool(stack, config.workers)
    schedule = disruption_schedule(config)
    disruptor = Disruptor(schedule, server, pool, client, lambda: driver.finished, config)
    faults = PermanentFaults(stack, pool, tracked, config.step_budget_seconds + 30)
    disruptor.faults = faults
    driver.operator.held = holding_check(faults)
    for target in PROXY_TARGETS:
        stack.reset_fault_counters(target)
    specs = {t: config.fault_spec(t) for t in PROXY_TARGETS}
    started_at = time.monotonic()
    disrupting: asyncio.Task[None] | None = None
    counters: dict[str, dict[str, Any]] = {}
    try:
        await asyncio.to_thread(pool.start)
        for target, spec in specs.items():
            stack.set_faults(target, spec)
        out.print(
            f"chaos: {config.bookings} bookings, {config.concurrency} in flight, "
            f"{len(pool.slots)} workers; schedule: "
            + ", ".join(f"{d.kind} after {d.after_finished}" for d in schedule)
            + f"; faults {specs['aws']} (seed per target)"
        )
        queue = iter(tracked)

        async def slot() -> None:
            for t in queue:
                await driver.book(t)

        disrupting = asyncio.create_task(disruptor.run())
        await asyncio.gather(*(slot() for _ in range(min(config.concurrency, len(tracked)))))
        await disrupting
        faulty_s = time.monotonic() - started_at
    finally:
        if disrupting is not None and not disrupting.done():
            disrupting.cancel()
            with contextlib.suppress(BaseException):
                await disrupting
        for target in PROXY_TARGETS:
            with contextlib.suppress(Exception):
                counters[target] = stack.fault_counters(target)
        faults_off(stack)
        if server.proc.poll() is not None:
            await asyncio.to_thread(server.restart)
            await server.ready(client)
    left = [t for t in tracked if t.started and t.outcome is None]
    out.print(
        f"faults off after {faulty_s:.0f} s; {len(left)} booking(s) still running, "
        f"waiting up to {config.final_timeout_seconds:.0f} s"
    )
    try:
        await asyncio.gather(*(driver.drive(t, config.final_timeout_seconds) for t in left))
    finally:
        await asyncio.to_thread(pool.stop)
    total_s = time.monotonic() - started_at
    ledger = await read_ledger(client, settings, aws, tracked)
    layers = {
        "server_kills": len(server.kills),
        "worker_kills": pool.killed,
        "rolled_workers": pool.rolled,
        "drain_exit_codes": pool.drain_exits,
        "log": disruptor.log,
        "permanent": faults.log,
        "cli_errors": faults.cli_errors,
        "queries_refused_run_ahead": guard_refusals(stack.log_dir),
    }
    return build_report(config, specs, counters, tracked, layers, driver.errors, ledger, total_s)


def guard_refusals(log_dir: Path) -> int:
    """How often a worker refused to run a booking ahead of its history for a query
    (`charters.worker.run_ahead`), from the workers' logs."""
    return sum(log.read_text(errors="replace").count(REFUSED_LOG) for log in log_dir.glob("*.log"))


# ---- the command ----------------------------------------------------------------------------


def run_chaos_cli(config: ChaosConfig, console: Console) -> int:
    """Own stack, the run, the report; 0 only without duplicates, losses or missing effects."""
    state = Path(tempfile.mkdtemp(prefix="charters-chaos-"))
    stack: DevStack | None = None
    try:
        with without_charters_env():
            console.print(f"starting a chaos stack in {state} …")
            try:
                # Short retry intervals and activity timeouts, as the test stack's: a killed
                # worker's activities are retried within seconds.
                stack = start_isolated_stack(state, **QUICK_RETRIES)
            except RuntimeError as exc:  # `start` has stopped what it started
                console.print(f"error: the chaos stack did not start: {exc}", markup=False)
                return 2
            report = asyncio.run(run_chaos(stack, config, console))
    except KeyboardInterrupt:
        console.print("interrupted")
        return 130
    finally:
        if stack is not None:
            stack.stop()
        if not config.keep_state:
            shutil.rmtree(state, ignore_errors=True)
    print_report(console, report)
    path = write_report(report, config.out_dir)
    console.print(f"report: {path}")
    return 0 if report["ok"] else 1
