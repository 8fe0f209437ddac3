"""The worker processes a bench variant runs: which workflow runner, how many processes.

A variant is `runner:workers`, e.g. `sandboxed:1` (the configuration before issue 13) or
`passthrough:2`. The bench runs its variants one after another on the same stack, stopping the
previous variant's workers first, so before and after are measured in one run on the same
machine load."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import get_args

from charters.settings import Settings
from charters.worker.runner import RUNNERS, RunnerName
from charters_dev.stack import DevStack, wait_for


@dataclass(frozen=True)
class Variant:
    runner: RunnerName
    workers: int = 1

    @property
    def name(self) -> str:
        return f"{self.runner}:{self.workers}"

    @classmethod
    def parse(cls, text: str) -> Variant:
        """`runner` or `runner:workers`."""
        runner, _, count = text.strip().partition(":")
        if runner not in get_args(RunnerName):
            raise ValueError(f"unknown workflow runner {runner!r} (one of {', '.join(RUNNERS)})")
        workers = int(count) if count else 1
        if workers < 1:
            raise ValueError(f"{text}: at least one worker")
        return cls(runner, workers)  # type: ignore[arg-type]


class WorkerPool:
    """The bench stack's worker processes (the stack itself is started without one)."""

    def __init__(self, stack: DevStack) -> None:
        self.stack = stack
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def start(self, variant: Variant) -> None:
        self.stop()
        settings = self.stack.worker_settings.model_copy(
            update={"workflow_runner": variant.runner, "health_port": 0}
        )
        for index in range(1, variant.workers + 1):
            name = f"worker-{variant.runner}-{variant.workers}-{index}"
            log = self.stack.log_dir / f"{name}.log"
            # the stack's own spawner: same env, logs under the stack, stopped with the stack
            self.procs.append(self.stack._spawn(name, self.stack._charters("worker"), settings))
            wait_for(
                lambda log=log: log.exists() and "worker polling" in log.read_text(),
                name,
                timeout=60,
            )

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (a graceful stop: nothing is in flight between variants), then SIGKILL."""
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs = []


def product_runner() -> str:
    """The runner a worker uses when nothing is set: the configuration the goals are about."""
    return str(Settings.model_fields["workflow_runner"].default)


def default_variants() -> list[str]:
    product = product_runner()
    return ["sandboxed:1", f"{product}:1", f"{product}:2"]
