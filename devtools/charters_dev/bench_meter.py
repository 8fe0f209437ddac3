"""CPU and memory of the stack's processes over a stretch of time, and the percentiles."""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from charters.worker.main import ACTIVITY_THREAD_NAME, WORKFLOW_THREAD_NAME
from charters_dev.stack import DevStack

# Processes of the stack whose CPU and memory are reported ("bench" is this process).
PROCESSES = ("temporal", "moto", "standins", "faultproxy", "confirm", "codec")
WORKER_SEP = "#"
# What the JSON and the table call the server and the emulators (the stand-ins for AWS and the
# two HTTP services, and the fault proxy that delays their answers).
SERVER = "temporal"
EMULATORS = ("moto", "standins", "faultproxy")

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


# A worker's threads by what they run, from their Linux names (charters/worker/main.py names
# its pools' threads for the OS).
THREAD_GROUPS = (
    (WORKFLOW_THREAD_NAME, "workflow_tasks"),
    (ACTIVITY_THREAD_NAME, "activities"),
    ("tokio", "sdk_core"),
    ("temporal", "sdk_core"),
)


def worker_threads_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of a worker by thread group: `workflow_tasks` (workflow activations, sandbox
    included), `activities` (the activity thread pool), `event_loop` (the main thread: polling,
    payload conversion and encryption, dispatch), `sdk_core` (the Rust core's threads), `other`."""
    groups = dict.fromkeys(("workflow_tasks", "activities", "event_loop", "sdk_core", "other"), 0.0)
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = (task / "stat").read_text()
                comm = stat[stat.index("(") + 1 : stat.rindex(")")]
                fields = stat[stat.rindex(")") + 2 :].split()
                cpu = (int(fields[11]) + int(fields[12])) / _TICK
                group = "event_loop" if task.name == str(pid) else "other"
                for prefix, name in THREAD_GROUPS:
                    if comm.startswith(prefix):
                        group = name
                groups[group] += cpu
    return groups


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

    def __init__(self, stack: DevStack, worker_pids: Callable[[], list[int]]) -> None:
        self.pids = {name: p.pid for name, p in stack.procs.items() if name in PROCESSES}
        self.pids["bench"] = os.getpid()
        self._worker_pids = worker_pids  # the variant's worker processes, one or more

    def snapshot(self) -> dict[str, Any]:
        pids = dict(self.pids)
        workers = self._worker_pids()
        for index, pid in enumerate(workers, start=1):
            pids[f"worker{WORKER_SEP}{index}"] = pid
        return {
            "at": time.perf_counter(),
            "machine": machine_ticks(),
            "procs": {name: process_figures(pid) for name, pid in pids.items()},
            "worker_threads": [worker_threads_cpu(pid) for pid in workers],
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
        procs = _workers_as_one(procs, bookings, wall)
        if "worker" in procs:
            procs["worker"]["cpu_ms_per_booking_by_thread"] = _threads_delta(
                before.get("worker_threads", []), after.get("worker_threads", []), bookings
            )
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


def _threads_delta(
    before: list[dict[str, float]], after: list[dict[str, float]], bookings: int
) -> dict[str, float]:
    """Per thread group, the CPU ms per booking of all worker processes together."""
    total: dict[str, float] = {}
    for start, end in zip(before, after, strict=False):
        for group, seconds in end.items():
            total[group] = total.get(group, 0.0) + seconds - start.get(group, 0.0)
    return {g: round(s * 1000 / max(bookings, 1), 2) for g, s in total.items()}


def _workers_as_one(procs: dict[str, Any], bookings: int, wall: float) -> dict[str, Any]:
    """All worker processes as one `worker` entry (CPU summed: the CPU a booking costs in
    workers), with each process's cores used beside it (one saturated process shows there)."""
    names = [n for n in procs if n.startswith(f"worker{WORKER_SEP}")]
    if not names:
        return procs
    each = [procs.pop(n) for n in names]
    cpu = sum(w["cpu_s"] for w in each)
    procs["worker"] = {
        "cpu_s": round(cpu, 3),
        "cpu_ms_per_booking": round(cpu * 1000 / max(bookings, 1), 2),
        "cores_used": round(cpu / wall, 3) if wall > 0 else None,
        "peak_rss_mb": max(w["peak_rss_mb"] for w in each),
        "process_count": len(each),
        "cores_used_per_process": [w["cores_used"] for w in each],
    }
    return procs


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
