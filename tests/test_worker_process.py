"""The production worker process: /healthz and /metrics, JSON logs, graceful shutdown on
SIGTERM, and the SDK's custom workflow metrics on /metrics. Runs against its own Temporal dev
server on free ports (not the session stack)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import temporalio.activity
import temporalio.workflow
from charters_dev.ports import free_port
from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

import charters.worker.main as worker_main
from charters.observability import JsonFormatter, configure_logging, metrics_runtime
from charters.settings import Settings
from charters.temporal_client import converter
from charters.worker.health import HealthServer

GRACE = Settings.model_fields["graceful_shutdown_seconds"].default


@pytest.fixture(autouse=True)
def no_stack_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings() here must not pick up the session stack's CHARTERS_* (codec keys...)."""
    for name in list(os.environ):
        if name.startswith("CHARTERS_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
async def temporal() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(Path(sys.executable).parent / "temporal"),
        ui=False,
        dev_server_extra_args=[
            "--http-port",
            str(free_port()),
            "--metrics-port",
            str(free_port()),
        ],
    )
    try:
        yield env
    finally:
        await env.shutdown()


def _address(env: WorkflowEnvironment) -> str:
    return env.client.service_client.config.target_host


def _get(url: str) -> httpx.Response:
    return httpx.get(url, timeout=3)


def _wait(check: Any, what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as exc:  # noqa: BLE001 - not yet
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout}s (last: {last!r})")


# ---- the `charters worker` process ----------------------------------------------------------


@pytest.fixture
def worker_process(
    temporal: WorkflowEnvironment, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], int, str, Path]]:
    port = free_port()
    queue = f"worker-process-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "worker.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARTERS_")}
    env.update(
        CHARTERS_TEMPORAL_ADDRESS=_address(temporal),
        CHARTERS_HEALTH_PORT=str(port),
        CHARTERS_LOG_JSON="true",
        CHARTERS_TASK_QUEUE=queue,
        CHARTERS_STATE_DIR=str(tmp_path / "state"),
        CHARTERS_WORKER_THREADS="4",
        PYTHONUNBUFFERED="1",
    )
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "charters", "worker"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        yield proc, port, queue, log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_worker_process_health_metrics_json_logs_and_sigterm(
    worker_process: tuple[subprocess.Popen[bytes], int, str, Path],
) -> None:
    proc, port, queue, log = worker_process
    base = f"http://127.0.0.1:{port}"
    _wait(lambda: "worker polling" in log.read_text(), "the worker logs that it polls")

    health = _wait(lambda: (r := _get(f"{base}/healthz")).status_code == 200 and r, "/healthz")
    assert health.json() == {"status": "ok", "task_queue": queue}
    assert _get(f"{base}/nope").status_code == 404

    # Pollers report once they have polled: wait for the SDK's worker metrics.
    metrics = _wait(
        lambda: "temporal_num_pollers" in (t := _get(f"{base}/metrics").text) and t,
        "SDK metrics on /metrics",
    )
    assert f'task_queue="{queue}"' in metrics
    assert "temporal_worker_task_slots_available" in metrics
    assert f'charters_worker_up{{task_queue="{queue}"}} 1' in metrics

    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    during: list[int | str] = []

    def healthz() -> int | str:
        try:
            return _get(f"{base}/healthz").status_code
        except httpx.HTTPError:
            return "closed"

    def probe() -> None:
        while proc.poll() is None:
            during.append(healthz())
            time.sleep(0.02)
        during.append(healthz())  # a fast stop can end between two probes: once more, gone

    prober = threading.Thread(target=probe)
    prober.start()
    code = proc.wait(GRACE + 5)
    prober.join()
    assert code == 0
    assert time.monotonic() - started < GRACE
    # Once shutdown began (the first answers may predate the signal): 503, then port closed.
    assert during[-1] == "closed", during
    first_down = next(i for i, got in enumerate(during) if got != 200)
    assert 200 not in during[first_down:], during

    lines = [line for line in log.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    for record in records:
        assert {"time", "level", "logger", "message"} <= record.keys()
    messages = [r["message"] for r in records]
    assert f"worker polling task queue {queue}" in messages
    assert "received SIGTERM: stopping" in messages
    assert messages[-1] == "worker stopped"


# ---- graceful shutdown with an activity in flight ----------------------------------------


slow_started = threading.Event()
slow_release = threading.Event()


@activity.defn
def slow_step(seconds: float) -> str:
    slow_started.set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not slow_release.is_set():
        activity.heartbeat()
        time.sleep(0.1)
    return "done"


@workflow.defn(sandboxed=False)
class SlowStepWorkflow:
    @workflow.run
    async def run(self, seconds: float) -> str:
        return await workflow.execute_activity(
            slow_step,
            seconds,
            start_to_close_timeout=timedelta(seconds=60),
            heartbeat_timeout=timedelta(seconds=10),
        )


@pytest.fixture
def slow_worker(
    temporal: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    """`run_worker` as the CLI runs it, its Worker serving only `SlowStepWorkflow`."""

    def build(client: Client, settings: Settings, executor: Any) -> Worker:
        return Worker(
            client,
            task_queue=settings.task_queue,
            workflows=[SlowStepWorkflow],
            activities=[slow_step],
            activity_executor=executor,
            graceful_shutdown_timeout=timedelta(seconds=GRACE),
        )

    monkeypatch.setattr(worker_main, "build_worker", build)
    slow_started.clear()
    slow_release.clear()
    try:
        yield Settings(
            temporal_address=_address(temporal),
            task_queue=f"slow-{uuid.uuid4().hex[:8]}",
            health_port=free_port(),
        )
    finally:
        slow_release.set()


async def test_sigterm_lets_an_in_flight_activity_finish(
    temporal: WorkflowEnvironment, slow_worker: Settings
) -> None:
    """Polling stops at once and /healthz turns 503; the running activity still completes
    within the grace period, then `run_worker` returns 0."""
    settings = slow_worker
    running = asyncio.create_task(worker_main.run_worker(settings))
    handle = await temporal.client.start_workflow(
        SlowStepWorkflow.run, 2.0, id=f"wf-{settings.task_queue}", task_queue=settings.task_queue
    )
    await asyncio.to_thread(slow_started.wait, 30)
    started = time.monotonic()
    os.kill(os.getpid(), signal.SIGTERM)  # run_worker's handler, not pytest's
    await asyncio.sleep(0.3)
    async with httpx.AsyncClient() as http:
        during = await http.get(f"http://127.0.0.1:{settings.health_port}/healthz")
    assert during.status_code == 503 and during.json() == {"status": "shutting-down"}
    assert not running.done()  # still waiting for the activity

    assert await asyncio.wait_for(running, GRACE + 5) == 0
    assert time.monotonic() - started < GRACE
    events = [e.event_type async for e in handle.fetch_history_events()]
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED in events


async def test_second_signal_abandons_in_flight_activities(
    temporal: WorkflowEnvironment, slow_worker: Settings
) -> None:
    """A second signal does not wait for the grace period: exit code 1 at once (the activity
    is retried elsewhere once its heartbeat or start-to-close timeout passes)."""
    settings = slow_worker
    running = asyncio.create_task(worker_main.run_worker(settings))
    await temporal.client.start_workflow(
        SlowStepWorkflow.run, 60.0, id=f"wf-{settings.task_queue}", task_queue=settings.task_queue
    )
    await asyncio.to_thread(slow_started.wait, 30)
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.sleep(0.3)
    assert not running.done()
    os.kill(os.getpid(), signal.SIGINT)
    assert await asyncio.wait_for(running, 3) == 1


@activity.defn
def stuck_step() -> str:
    slow_started.set()
    slow_release.wait(60)  # a call stuck in C: neither heartbeats nor notices cancellation
    return "done"


@workflow.defn(sandboxed=False)
class StuckStepWorkflow:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(
            stuck_step, start_to_close_timeout=timedelta(seconds=60)
        )


async def test_activity_stuck_past_the_grace_period_is_abandoned(
    temporal: WorkflowEnvironment, slow_worker: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow_worker = slow_worker.model_copy(update={"graceful_shutdown_seconds": 0.5})
    monkeypatch.setattr(worker_main, "HARD_STOP_MARGIN_SECONDS", 0.5)

    def build(client: Client, settings: Settings, executor: Any) -> Worker:
        return Worker(
            client,
            task_queue=settings.task_queue,
            workflows=[StuckStepWorkflow],
            activities=[stuck_step],
            activity_executor=executor,
            graceful_shutdown_timeout=timedelta(seconds=0.5),
        )

    monkeypatch.setattr(worker_main, "build_worker", build)
    settings = slow_worker
    stop = asyncio.Event()
    running = asyncio.create_task(worker_main.run_worker(settings, stop))
    await temporal.client.start_workflow(
        StuckStepWorkflow.run, id=f"wf-{settings.task_queue}", task_queue=settings.task_queue
    )
    await asyncio.to_thread(slow_started.wait, 30)
    stop.set()
    assert await asyncio.wait_for(running, 5) == 1


# ---- custom workflow metrics and the log context -----------------------------------------


@activity.defn
async def say_hello() -> None:
    activity.logger.info("hello from the activity")


@workflow.defn(sandboxed=False)
class CountingWorkflow:
    @workflow.run
    async def run(self) -> None:
        meter = workflow.metric_meter()
        stages = meter.create_counter(
            "charters_booking_stage_transitions", "booking stage transitions"
        )
        done = meter.create_counter("charters_bookings_completed", "finished bookings")
        stages.add(1, {"stage": "validating"})
        stages.add(1, {"stage": "awaiting-crew"})
        workflow.logger.info("hello from the workflow")
        await workflow.execute_activity(say_hello, start_to_close_timeout=timedelta(seconds=30))
        done.add(1, {"outcome": "confirmed"})


async def test_custom_workflow_metrics_and_log_context(temporal: WorkflowEnvironment) -> None:
    telemetry = metrics_runtime()
    client = await Client.connect(
        _address(temporal), data_converter=converter(Settings()), runtime=telemetry.runtime
    )
    queue = f"metrics-{uuid.uuid4().hex[:8]}"
    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    health = HealthServer(queue, telemetry.metrics_url)
    await health.start()
    try:
        configure_logging(json=True)  # the context goes on the record, not in the message
        root.addHandler(handler)
        async with Worker(
            client,
            task_queue=queue,
            workflows=[CountingWorkflow],
            activities=[say_hello],
            workflow_runner=UnsandboxedWorkflowRunner(),
        ):
            health.state = "ok"
            handle = await client.start_workflow(
                CountingWorkflow.run, id=f"wf-{queue}", task_queue=queue
            )
            await handle.result()
            async with httpx.AsyncClient() as http:
                metrics = (await http.get(f"http://127.0.0.1:{health.port}/metrics")).text
    finally:
        await health.close()
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        temporalio.activity.logger.activity_info_on_message = True
        temporalio.workflow.logger.workflow_info_on_message = True

    def sample(name: str, **labels: str) -> float:
        for line in metrics.splitlines():
            if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
        raise AssertionError(f"{name} {labels} not in /metrics:\n{metrics}")

    assert sample("charters_booking_stage_transitions", stage="validating", task_queue=queue) == 1
    assert sample("charters_booking_stage_transitions", stage="awaiting-crew") == 1
    assert sample("charters_bookings_completed", outcome="confirmed", task_queue=queue) == 1
    assert sample("temporal_workflow_completed", task_queue=queue) == 1

    records = [json.loads(line) for line in captured.getvalue().splitlines()]
    wf = next(r for r in records if r["message"] == "hello from the workflow")
    assert wf["workflow_id"] == handle.id and wf["run_id"] == handle.result_run_id
    assert wf["logger"] == "temporalio.workflow"
    act = next(r for r in records if r["message"] == "hello from the activity")
    assert act["workflow_id"] == handle.id and act["run_id"] == handle.result_run_id
    assert act["activity_type"] == "say_hello" and act["attempt"] == 1 and act["activity_id"]


def test_json_failure_lines_keep_type_message_and_stack_only() -> None:
    try:
        try:
            raise KeyError("inner")
        except KeyError as inner:
            raise RuntimeError("x" * 5000) from inner
    except RuntimeError:
        record = logging.LogRecord(
            "temporalio.activity",
            logging.WARNING,
            __file__,
            1,
            "Completing activity as failed",
            None,
            sys.exc_info(),
        )
    record.temporal_activity = {
        "activity_id": "3",
        "activity_type": "send_crew_email",
        "attempt": 2,
        "workflow_id": "charter-X",
        "workflow_run_id": "r1",
    }
    line = json.loads(JsonFormatter().format(record))
    assert line["activity_type"] == "send_crew_email" and line["run_id"] == "r1"
    assert line["attempt"] == 2 and line["level"] == "WARNING"
    assert line["error_type"] == "RuntimeError" and len(line["error"]) < 1100
    assert line["error_cause"] == "KeyError: 'inner'"
    assert "test_json_failure_lines" in line["traceback"]
