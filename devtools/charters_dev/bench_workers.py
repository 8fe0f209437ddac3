"""The worker processes a bench variant runs: which workflow runner, how many processes.

A variant is `runner:workers[:steps]`, e.g. `sandboxed:1:regular` (the heaviest configuration:
the SDK's sandbox, every step a regular activity) or `unsandboxed:2` (steps: `local`, the opt-in
local-first steps and the default when none is given, or `regular`, the product's). The bench
runs its variants one after another on the same stack, stopping the previous variant's workers
first, so before and after are measured in one run on the same machine load."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import Literal, get_args

from charters.settings import Settings
from charters.worker.runner import RUNNERS, RunnerName
from charters_dev.ports import wait_for
from charters_dev.stack import DevStack

Steps = Literal["local", "regular"]
STEPS: tuple[str, ...] = get_args(Steps)


@dataclass(frozen=True)
class Variant:
    runner: RunnerName
    workers: int = 1
    steps: Steps = "local"

    @property
    def name(self) -> str:
        return f"{self.runner}:{self.workers}" + ("" if self.steps == "local" else f":{self.steps}")

    @property
    def local_activities(self) -> bool:
        return self.steps == "local"

    @classmethod
    def parse(cls, text: str) -> Variant:
        """`runner`, `runner:workers` or `runner:workers:steps`."""
        runner, _, rest = text.strip().partition(":")
        count, _, steps = rest.partition(":")
        if runner not in get_args(RunnerName):
            raise ValueError(f"unknown workflow runner {runner!r} (one of {', '.join(RUNNERS)})")
        if steps and steps not in STEPS:
            raise ValueError(f"{text}: steps are one of {', '.join(STEPS)}")
        workers = int(count) if count else 1
        if workers < 1:
            raise ValueError(f"{text}: at least one worker")
        return cls(runner, workers, steps or "local")  # type: ignore[arg-type]


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


def product_steps() -> str:
    return "local" if Settings.model_fields["local_activities"].default else "regular"


def is_product(variant: Variant) -> bool:
    return variant.runner == product_runner() and variant.steps == product_steps()


def default_variants() -> list[str]:
    """The baseline (the heaviest), the product's runner with the other kind of steps, then the
    product with one and two worker processes: each change measured on its own, in one run."""
    product, steps = product_runner(), product_steps()
    other = "local" if steps == "regular" else "regular"
    return [
        "sandboxed:1:regular",
        f"{product}:1:{other}",
        f"{product}:1:{steps}",
        f"{product}:2:{steps}",
    ]
