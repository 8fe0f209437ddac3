"""The process layers a chaos run breaks: the Temporal dev server (kill -9, restarted on the same
port and SQLite file) and a pool of workers (kill -9 of one, or a rolling deploy: each worker in
turn replaced and sent SIGTERM, which drains it gracefully).

The processes are managed here, beside `DevStack`, not inside it: the dev server is restarted from
the very argv the stack started it with (`Popen.args`), and the new process is put back into
`stack.procs` so `stack.stop()` still ends it.

What the Temporal Python SDK does about a lost server (relied on, and measured by the run): a
running worker retries failed polls (UNAVAILABLE for as long as it lasts; errors it cannot
classify for about a minute before the worker fails: sdk-python#631), and its client reconnects
on the next call, so it carries on once the server is back. `charters worker` that *starts*
while the server is down exits 1 (it cannot connect), so a worker is only (re)started once the
server answers, and started again if it exits before it polls. Clients retry UNAVAILABLE calls a
few times; the driver retries what still fails. Not shown by the dev server: a server that comes
back with another address or a lost database (the SQLite file here survives kill -9)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from temporalio.client import Client

from charters.settings import Settings
from charters_dev.chaos_config import ChaosConfig, Disruption
from charters_dev.ports import free_port, port_open
from charters_dev.stack import DevStack
from charters_dev.stack_config import settings_env

WORKER_READY = "worker polling"


class TemporalServer:
    """kill -9 and restart of the stack's Temporal dev server (SQLite on disk)."""

    def __init__(self, stack: DevStack) -> None:
        self.stack = stack
        self.port = int(stack.settings.temporal_address.rpartition(":")[2])
        self.kills: list[dict[str, Any]] = []

    @property
    def proc(self) -> subprocess.Popen[bytes]:
        return self.stack.procs["temporal"]

    def kill(self) -> None:
        """SIGKILL of the server's process group: no shutdown, the SQLite file as it lies."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def restart(self) -> None:
        """Same argv (port, DB file, search attributes), same environment; logs appended."""
        if port_open(self.port):
            return  # someone (a supervisor) brought it back already
        log = open(self.stack.log_dir / "temporal.log", "ab")  # noqa: SIM115 - lives with the child
        self.stack.procs["temporal"] = subprocess.Popen(
            self.proc.args,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.stack.env(),
            start_new_session=True,
        )

    async def ready(self, client: Client, timeout: float = 90.0) -> float:
        """Seconds until a visibility call succeeds again (the port opens before shards load)."""
        t0 = time.monotonic()
        while True:
            try:
                await client.count_workflows()
                return time.monotonic() - t0
            except Exception:
                if time.monotonic() - t0 > timeout:
                    raise
                await asyncio.sleep(0.2)

    async def kill_and_restart(self, client: Client, down: float, at: float) -> None:
        await asyncio.to_thread(self.kill)
        await asyncio.sleep(down)
        await asyncio.to_thread(self.restart)
        ready_s = await self.ready(client)
        self.kills.append(
            {"at_s": round(at, 2), "down_s": round(down, 2), "ready_s": round(ready_s, 2)}
        )


@dataclass
class WorkerSlot:
    name: str
    proc: subprocess.Popen[bytes] | None = None
    generation: int = 0
    exits: list[int | None] = field(default_factory=list)


class WorkerPool:
    """`size` worker processes on the stack's task queue, each with its own health port and log.
    On `start` the stack's own worker hands over (SIGTERM once the pool polls); `stop` brings
    it back, so the stack is left as it was found."""

    def __init__(self, stack: DevStack, size: int) -> None:
        self.stack = stack
        self.slots = [WorkerSlot(f"chaos-worker-{n}") for n in range(1, max(1, size) + 1)]
        self._logs: list[IO[bytes]] = []
        self.killed = 0
        self.rolled = 0
        self.drain_exits: list[int | None] = []
        self.overrides: dict[str, Any] = {}
        # A roll for a permanent fault and a kill or roll of the schedule never overlap.
        self.lock = threading.Lock()

    def _settings(self) -> Settings:
        return self.stack.worker_settings.model_copy(
            update={**self.overrides, "health_port": free_port()}
        )

    def spawn(self, slot: WorkerSlot) -> None:
        """Starts the slot's next process and waits until it polls (started again if it exits
        first: a worker that starts while the server is down gives up at once)."""
        log_path = self.stack.log_dir / f"{slot.name}.log"
        before = log_path.read_text().count(WORKER_READY) if log_path.exists() else 0
        log = open(log_path, "ab")  # noqa: SIM115 - lives with the child
        self._logs.append(log)
        env = {**self.stack.env(), **settings_env(self._settings())}
        argv = self.stack._charters("worker")

        def popen() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )

        slot.proc = popen()
        slot.generation += 1
        deadline = time.monotonic() + 90
        while log_path.read_text().count(WORKER_READY) <= before:
            if slot.proc.poll() is not None:
                time.sleep(0.5)
                slot.proc = popen()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{slot.name} did not poll within 90 s")
            time.sleep(0.1)

    def start(self) -> None:
        for slot in self.slots:
            self.spawn(slot)
        self.stack.kill_worker(signal.SIGTERM)

    def _end(self, slot: WorkerSlot, sig: int, timeout: float) -> int | None:
        proc = slot.proc
        if proc is None or proc.poll() is not None:
            return proc.returncode if proc else None
        proc.send_signal(sig)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait(timeout=30)
        slot.exits.append(code)
        return code

    def kill(self, index: int, down: float) -> None:
        """kill -9 of one worker; a new one in its slot after `down` seconds."""
        with self.lock:
            slot = self.slots[index % len(self.slots)]
            self._end(slot, signal.SIGKILL, 30)
            self.killed += 1
            time.sleep(down)
            self.spawn(slot)

    def roll(self, overrides: dict[str, Any] | None = None) -> None:
        """A rolling deploy: for each slot in turn, the new process first (it polls), then
        SIGTERM to the old one, which stops polling and lets its activities finish. With
        `overrides`, the new processes run with those settings (a bad deploy, or its rollback)."""
        with self.lock:
            if overrides is not None:
                self.overrides = overrides
            grace = self.stack.settings.graceful_shutdown_seconds + 10
            for slot in self.slots:
                old = slot.proc
                self.spawn(slot)
                keep = slot.proc
                slot.proc = old
                self.drain_exits.append(self._end(slot, signal.SIGTERM, grace))
                slot.proc = keep
                self.rolled += 1

    def stop(self) -> None:
        """Every pool worker drained; the stack's own worker back."""
        grace = self.stack.settings.graceful_shutdown_seconds + 10
        worker = self.stack.procs.get("worker")
        if worker is None or worker.poll() is not None:
            self.stack.start_worker()
        for slot in self.slots:
            self._end(slot, signal.SIGTERM, grace)
        for log in self._logs:
            log.close()


class Disruptor:
    """Runs the schedule: each disruption once enough bookings have finished, one at a time (a
    worker is never (re)started while the server is down)."""

    def __init__(
        self,
        schedule: list[Disruption],
        server: TemporalServer,
        pool: WorkerPool,
        client: Client,
        finished: Callable[[], int],
        config: ChaosConfig,
    ) -> None:
        self.schedule = schedule
        self.server = server
        self.pool = pool
        self.client = client
        self.finished = finished
        self.config = config
        self.rng = random.Random(config.seed + 1)
        self.log: list[dict[str, Any]] = []
        self.t0 = time.monotonic()
        self.faults: Any = None  # chaos_faults.PermanentFaults, set by the runner

    async def run(self) -> None:
        """Permanent faults run beside the process disruptions (a window stays open while the
        server and workers keep failing); each line runs its own events one at a time."""
        permanent = [e for e in self.schedule if e.kind.startswith("permanent:")]
        processes = [e for e in self.schedule if e not in permanent]
        await asyncio.gather(self._run(processes), self._run(permanent))

    async def _run(self, events: list[Disruption]) -> None:
        for event in events:
            while self.finished() < event.after_finished:
                await asyncio.sleep(0.1)
            await asyncio.sleep(event.delay)
            at = time.monotonic() - self.t0
            entry: dict[str, Any] = {"kind": event.kind, "at_s": round(at, 2)}
            entry["finished_before"] = self.finished()
            try:
                if event.kind == "server-kill":
                    down = self.rng.uniform(*self.config.server_down_seconds)
                    await self.server.kill_and_restart(self.client, down, at)
                    entry["down_s"] = round(down, 2)
                elif event.kind == "worker-kill":
                    down = self.rng.uniform(*self.config.down_seconds)
                    index = self.rng.randrange(len(self.pool.slots))
                    await asyncio.to_thread(self.pool.kill, index, down)
                    entry |= {"down_s": round(down, 2), "worker": self.pool.slots[index].name}
                elif event.kind.startswith("permanent:") and self.faults is not None:
                    await self.faults.run(event.kind.partition(":")[2])
                else:
                    await asyncio.to_thread(self.pool.roll)
            except Exception as exc:  # noqa: BLE001 - reported; the run goes on
                entry["error"] = f"{type(exc).__name__}: {exc}"
            entry["took_s"] = round(time.monotonic() - self.t0 - at, 2)
            self.log.append(entry)
