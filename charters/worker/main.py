"""Runs the worker until SIGINT/SIGTERM, then shuts down gracefully.

On the first signal the worker stops polling (no new workflow or activity tasks), `/healthz`
turns 503, and activities already running get `graceful_shutdown_seconds` to finish before the
SDK cancels them; then the process exits 0. Activities that outlive even the cancellation by
`HARD_STOP_MARGIN_SECONDS` (a call stuck in C code) are abandoned: Temporal retries them on
another worker after their start-to-close timeout, and the process exits 1. A second signal
abandons them at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from charters.observability import metrics_runtime
from charters.settings import Settings
from charters.temporal_client import connect
from charters.worker import bounces, wiring
from charters.worker.health import HealthServer
from charters.worker.runner import apply_activation_jobs_together, worker_runner
from charters.workflows.charter_booking import CharterBookingWorkflow

log = logging.getLogger("charters.worker")

HARD_STOP_MARGIN_SECONDS = 5.0
PR_SET_NAME = 15  # prctl(2)
WORKFLOW_THREAD_NAME = "charters-wf"
ACTIVITY_THREAD_NAME = "charters-act"

EXIT_OK = 0
EXIT_FAILED = 1


def os_thread_name(name: str) -> Callable[[], None]:
    """A thread pool initializer that names the thread for the OS too (`top -H`, /proc: what
    the bench reads to split the worker's CPU into workflow tasks and activities); Python 3.11
    keeps thread names to itself. Linux only; elsewhere a no-op."""

    def initializer() -> None:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0)

    return initializer


def workflow_executor() -> ThreadPoolExecutor:
    """The SDK's own default (500 threads, for workflow activations), with OS thread names."""
    return ThreadPoolExecutor(
        max_workers=500,
        thread_name_prefix="temporal_workflow_",
        initializer=os_thread_name(WORKFLOW_THREAD_NAME),
    )


def build_worker(client: Client, settings: Settings, executor: ThreadPoolExecutor) -> Worker:
    aws = wiring.aws_clients(settings, max_pool=executor._max_workers, for_activities=True)
    http = wiring.http_client(executor._max_workers)
    return apply_activation_jobs_together(
        Worker(
            client,
            task_queue=settings.task_queue,
            workflows=[CharterBookingWorkflow],
            workflow_runner=worker_runner(settings.workflow_runner),
            # idle pool threads end with the process (the SDK leaves a given pool running)
            workflow_task_executor=workflow_executor(),
            activities=wiring.activities(settings, aws, http),
            activity_executor=executor,
            max_concurrent_activities=executor._max_workers,
            graceful_shutdown_timeout=timedelta(seconds=settings.graceful_shutdown_seconds),
        )
    )


async def run_worker(settings: Settings, stop: asyncio.Event | None = None) -> int:
    """Runs until `stop` is set (or SIGINT/SIGTERM); returns the process exit code. Exit code 1
    with activity threads possibly still running: the caller should end the process hard."""
    stop = stop or asyncio.Event()
    abandon = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        if not stop.is_set():
            log.info("received %s: stopping", sig.name)
            stop.set()
        else:
            log.warning("received %s again: abandoning in-flight activities", sig.name)
            abandon.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        return await _run(settings, stop, abandon)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def _run(settings: Settings, stop: asyncio.Event, abandon: asyncio.Event) -> int:
    telemetry = metrics_runtime()
    try:
        client = await connect(settings, runtime=telemetry.runtime)
    except Exception as exc:  # noqa: BLE001 - reported as one log line and exit code 1
        log.error("cannot connect to Temporal at %s: %s", settings.temporal_address, exc)
        return EXIT_FAILED

    health = await _start_health(settings, telemetry.metrics_url)
    executor = ThreadPoolExecutor(
        max_workers=settings.worker_threads,
        thread_name_prefix="charters-activity",
        initializer=os_thread_name(ACTIVITY_THREAD_NAME),
    )
    clean = False
    try:
        try:
            worker = build_worker(client, settings, executor)
        except Exception as exc:  # noqa: BLE001 - reported as one log line and exit code 1
            log.error("cannot build the worker: %s", exc, exc_info=exc)
            return EXIT_FAILED
        running = asyncio.create_task(worker.run(), name="temporal-worker")
        listener = bounces.start(client, settings, stop)
        if health:
            health.state = "ok"
        log.info("worker polling task queue %s", settings.task_queue)
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if listener:
            listener.cancel()
        if health:
            health.state = "shutting-down"
        if running.done():
            failure = running.exception()
            log.error("worker failed: %s", failure, exc_info=failure)
            return EXIT_FAILED

        log.info(
            "worker shutting down: polling stopped, in-flight activities have %.0fs to finish",
            settings.graceful_shutdown_seconds,
        )
        shutdown = asyncio.create_task(worker.shutdown())
        abandoned = asyncio.create_task(abandon.wait())
        await asyncio.wait(
            {shutdown, abandoned},
            timeout=settings.graceful_shutdown_seconds + HARD_STOP_MARGIN_SECONDS,
            return_when=asyncio.FIRST_COMPLETED,
        )
        abandoned.cancel()
        if not shutdown.done():
            shutdown.cancel()
            running.cancel()  # stop waiting for the activities' tasks too
            await asyncio.wait({running}, timeout=1)
            log.error("worker did not stop in time: in-flight activities abandoned (they retry)")
            return EXIT_FAILED
        try:
            await running
        except Exception as exc:  # noqa: BLE001 - a fatal error raced with the shutdown
            log.error("worker failed while stopping: %s", exc, exc_info=exc)
            return EXIT_FAILED
        clean = True
        log.info("worker stopped")
        return EXIT_OK
    finally:
        executor.shutdown(wait=clean, cancel_futures=True)
        if health:
            await health.close()


async def _start_health(settings: Settings, metrics_url: str) -> HealthServer | None:
    if not settings.health_port:
        return None
    health = HealthServer(
        settings.task_queue, metrics_url, host=settings.health_host, port=settings.health_port
    )
    try:
        await health.start()
    except OSError as exc:
        # The worker still works; the orchestrator's probe will report the missing endpoint.
        log.error(
            "health endpoint disabled: cannot listen on %s:%s (%s); set CHARTERS_HEALTH_PORT "
            "to a free port, or 0",
            settings.health_host,
            settings.health_port,
            exc,
        )
        await health.close()
        return None
    log.info(
        "health endpoint on http://%s:%s/healthz and /metrics", settings.health_host, health.port
    )
    return health
