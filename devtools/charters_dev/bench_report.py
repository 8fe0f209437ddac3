"""The bench's figures per run and per variant, the run's report and its verdicts on the goals
(`bench_print` shows them).

Saturation: a Python process (the worker, moto, the stand-ins) runs its Python on one core at a
time (the GIL), so it is saturated near one core used; the Temporal server (Go) and the machine
are saturated when every core is busy."""

from __future__ import annotations

import os
import statistics
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charters_dev.bench_history import CrewBot, Sample
from charters_dev.bench_meter import EMULATORS, SERVER, percentile, summary
from charters_dev.bench_model import (
    CREW_NOTIFIED_PATH,
    CRITICAL_PATH,
    all_calls,
    expected_calls_per_target,
)
from charters_dev.bench_workers import Variant, is_product

if TYPE_CHECKING:
    from charters_dev.bench import BenchConfig

GOAL_C1_OVER_BOUND = 1.25
GOAL_BOOKINGS_PER_S = 8.0
GOAL_CONCURRENCY = 50
GOAL_WORKER_CPU_MS = 62.0
SATURATED_CORES = 0.9
BUSY_PCT = 90.0
GROWTH = 1.15  # throughput "stops" where one step up in concurrency gains less than 15%


def phase_report(
    variant: Variant, concurrency: int, samples: list[Sample], figures: dict[str, Any]
) -> dict[str, Any]:
    ok = [s for s in samples if s.ok]
    latencies = [s.latency_ms for s in ok]
    wall = figures["wall_s"]
    procs = figures["processes"]
    notified = summary([v for s in ok if (v := s.to_awaiting_ms) is not None])
    history = {
        key: round(statistics.fmean(s.events.get(key, 0) for s in ok), 2)
        for key in (ok[0].events if ok else {})
    }
    return {
        "variant": variant.name,
        "runner": variant.runner,
        "workers": variant.workers,
        "steps": variant.steps,
        "concurrency": concurrency,
        "bookings": len(samples),
        "completed": len(ok),
        "failed": len(samples) - len(ok),
        "errors": sorted({s.error for s in samples if s.error})[:5],
        "wall_s": wall,
        "bookings_per_s": round(len(ok) / wall, 2) if wall else None,
        "latency_ms": summary(latencies),
        "total_with_crew_wait_ms": summary([s.total_ms for s in ok]),
        "to_awaiting_crew_ms": notified,
        "crew_notified_ms": notified,
        "crew_wait_ms": summary([s.crew_wait_ms for s in ok]),
        "awaiting_crew_to_complete_ms": summary(
            [s.total_ms - v for s in ok if (v := s.to_awaiting_ms) is not None]
        ),
        "after_crew_ms": summary([v for s in ok if (v := s.after_crew_ms) is not None]),
        # where the latency goes: inside activities (the injected delays plus the calls'
        # own cost) versus orchestration around them (workflow tasks, dispatch, start/result)
        "in_activities_ms": summary([v for s in ok if (v := s.in_activities_ms) is not None]),
        "history_per_booking": history,
        "events_per_booking": history.get("history_events"),
        "orchestration_ms": summary(
            [s.latency_ms - v for s in ok if (v := s.in_activities_ms) is not None]
        ),
        "cpu_ms_per_booking": {
            "worker": procs["worker"]["cpu_ms_per_booking"],
            "server": procs[SERVER]["cpu_ms_per_booking"],
            "emulators": round(sum(procs[n]["cpu_ms_per_booking"] for n in EMULATORS), 2),
        },
        "saturation": saturation(figures),
        **{k: v for k, v in figures.items() if k != "wall_s"},
        "latencies_ms": [round(v, 1) for v in latencies],
    }


def saturation(figures: dict[str, Any]) -> dict[str, Any]:
    """Which process limits the run: the machine (every core busy) and its largest consumer,
    or a single-threaded process at one core, or none (the run waits on latency)."""
    procs = {k: v for k, v in figures["processes"].items() if k != "bench"}
    busy = figures["machine_cpu_busy_pct"] or 0.0
    top = max(procs, key=lambda k: procs[k]["cores_used"] or 0.0)
    full = [
        name
        for name, p in procs.items()
        if name != SERVER
        and max(p.get("cores_used_per_process") or [p["cores_used"] or 0.0]) >= SATURATED_CORES
    ]
    if busy >= BUSY_PCT:
        saturated = f"machine ({busy:.0f}% busy), largest consumer {top}"
    elif full:
        saturated = ", ".join(f"{n} (one process at a full core)" for n in full)
    else:
        saturated = None
    return {
        "saturated": saturated,
        "machine_cpu_busy_pct": busy,
        "other_cpu_pct": figures["other_cpu_pct"],
        "top_process": top,
        "top_cores_used": procs[top]["cores_used"],
        "single_process_full": full,
    }


def variant_summary(variant: Variant, phases: list[dict[str, Any]]) -> dict[str, Any]:
    """One variant's figures per concurrency, and where its throughput stops growing."""
    mine = sorted(
        (p for p in phases if p["variant"] == variant.name), key=lambda p: p["concurrency"]
    )
    per_c = {
        str(p["concurrency"]): {
            "bookings_per_s": p["bookings_per_s"],
            "cpu_ms_per_booking": p["cpu_ms_per_booking"],
            "worker_cpu_ms_per_booking_by_thread": p["processes"]["worker"].get(
                "cpu_ms_per_booking_by_thread"
            ),
            "events_per_booking": p["events_per_booking"],
            "latency_p50_ms": p["latency_ms"]["p50"],
            "latency_p95_ms": p["latency_ms"]["p95"],
            "crew_notified_p50_ms": p["crew_notified_ms"]["p50"],
            "crew_notified_p95_ms": p["crew_notified_ms"]["p95"],
            "saturated": p["saturation"]["saturated"],
        }
        for p in mine
    }
    stops: dict[str, Any] | None = None
    for low, high in zip(mine, mine[1:], strict=False):
        if (high["bookings_per_s"] or 0.0) < GROWTH * (low["bookings_per_s"] or 0.0):
            stops = {"between_concurrency": [low["concurrency"], high["concurrency"]]}
            stops.update(high["saturation"])
            break
    if stops is None and mine:
        stops = {"between_concurrency": None, "note": "still growing at the highest concurrency"}
        stops.update(mine[-1]["saturation"])
    return {
        "variant": variant.name,
        "runner": variant.runner,
        "workers": variant.workers,
        "steps": variant.steps,
        "by_concurrency": per_c,
        "throughput_stops": stops,
    }


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "MISS")


def goals(
    report: dict[str, Any], by_c: dict[int, dict[str, Any]], product: list[dict[str, Any]]
) -> dict[str, Any]:
    """`by_c`: the primary variant (the product's runner, one worker) per concurrency;
    `product`: every run of the product's configuration (one or more worker processes)."""
    bound = report["bound_ms"]
    p50 = report["p50_ms_c1"]
    seq = report["sequential_p50_ms"]
    c50 = by_c.get(GOAL_CONCURRENCY)
    worker_ms = c50["processes"]["worker"]["cpu_ms_per_booking"] if c50 else None
    return {
        "c1_p50_within_bound": {
            "target": f"p50 <= {GOAL_C1_OVER_BOUND} x {bound:g} ms",
            "value": p50,
            "status": _verdict(None if p50 is None else p50 <= GOAL_C1_OVER_BOUND * bound),
        },
        "c1_p50_below_sequential": {
            "target": f"p50 < sequential p50 {seq} ms",
            "value": p50,
            "status": _verdict(None if p50 is None or seq is None else p50 < seq),
        },
        "c50_worker_cpu": {
            "target": f"worker CPU <= {GOAL_WORKER_CPU_MS:g} ms per booking at C=50 "
            f"({report['primary_variant']})",
            "value": worker_ms,
            "status": _verdict(None if worker_ms is None else worker_ms <= GOAL_WORKER_CPU_MS),
        },
        "c50_throughput": throughput_goal(
            [p for p in product if p["concurrency"] == GOAL_CONCURRENCY]
        ),
    }


def throughput_goal(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The best C=50 run of the product (one or two workers) against the goal; below it,
    CEILING only when every core is busy and either the rest of the stack alone (the Temporal
    server, the emulators, the bench) needs more CPU per booking than the goal leaves, or the
    Temporal server is the largest consumer."""
    goal: dict[str, Any] = {"target": f">= {GOAL_BOOKINGS_PER_S:g} bookings/s at C=50"}
    if not runs:
        return {**goal, "status": "n/a"}
    best = max(runs, key=lambda p: p["bookings_per_s"] or 0.0)
    rate = best["bookings_per_s"] or 0.0
    sat = best["saturation"]
    busy, other, top = sat["machine_cpu_busy_pct"], sat["other_cpu_pct"] or 0.0, sat["top_process"]
    cpu = {k: v["cpu_ms_per_booking"] for k, v in best["processes"].items() if k != "bench"}
    total_ms = sum(v["cpu_ms_per_booking"] for v in best["processes"].values())
    cores = best["cores"]
    goal.update(
        {
            "value": rate,
            "variant": best["variant"],
            "machine_cpu_busy_pct": busy,
            "other_cpu_pct": other,
            "top_cpu_process": top,
            "cores_used": {k: v["cores_used"] for k, v in best["processes"].items()},
            "cpu_ms_per_booking": cpu,
            # what this machine could do if one part had every core to itself
            "temporal_ceiling_bookings_per_s": (
                round(cores * 1000 / cpu[SERVER], 1) if cpu.get(SERVER) else None
            ),
            "machine_ceiling_bookings_per_s": (
                round(cores * 1000 / total_ms, 1) if total_ms else None
            ),
        }
    )
    saturated = busy >= BUSY_PCT
    if rate >= GOAL_BOOKINGS_PER_S:
        goal["status"] = "PASS"
    elif saturated and other >= 15.0:
        goal["status"] = "MISS"
        goal["note"] = f"inconclusive: {other:.0f}% of the CPU went to processes outside the stack"
    elif saturated and (rest := total_ms - cpu.get("worker", 0.0)) >= (
        budget := cores * 1000 / GOAL_BOOKINGS_PER_S
    ):
        goal["status"] = "CEILING"
        others = ", ".join(f"{k} {v:.0f}" for k, v in cpu.items() if k != "worker")
        goal["note"] = (
            f"out of reach here whatever the worker does: {busy:.0f}% busy, and the rest of the "
            f"stack alone ({others}) needs {rest:.0f} ms CPU per booking, more than the "
            f"{budget:.0f} ms {cores} cores allow at {GOAL_BOOKINGS_PER_S:g}/s"
        )
    elif saturated and top == SERVER:
        goal["status"] = "CEILING"
        goal["note"] = (
            f"CPU-bound with the Temporal server first: {busy:.0f}% busy, server "
            f"{cpu[SERVER]:.0f} ms CPU per booking, worker {cpu.get('worker', 0):.0f}; the whole "
            f"stack needs {total_ms:.0f} ms per booking, {cores} cores give "
            f"{goal['machine_ceiling_bookings_per_s']} bookings/s"
        )
    else:
        goal["status"] = "MISS"
        goal["note"] = sat["saturated"] or f"CPU only {busy:.0f}% busy: not CPU-bound"
    return goal


def run_report(
    cfg: BenchConfig,
    measured: dict[str, int],
    baseline: list[float],
    phases: list[dict[str, Any]],
    bot: CrewBot | None,
    stack: dict[str, Any],
) -> dict[str, Any]:
    """The run's report: the critical path and its bound, calls per booking, latencies, each
    variant's figures and the goals' verdicts; `stack` adds the stack's own settings."""
    variants = cfg.parsed_variants()
    primary = next((v for v in variants if is_product(v) and v.workers == 1), variants[-1])
    mine = [p for p in phases if p["variant"] == primary.name]
    by_c = {p["concurrency"]: p for p in mine}
    bound = len(CRITICAL_PATH) * cfg.latency_ms
    notified_bound = len(CREW_NOTIFIED_PATH) * cfg.latency_ms
    c1 = by_c.get(1)
    p50_c1 = c1["latency_ms"]["p50"] if c1 else None
    sequential_p50 = percentile(baseline, 50)
    c50 = by_c.get(50)
    expected = expected_calls_per_target()
    summaries = [variant_summary(v, phases) for v in variants]
    report: dict[str, Any] = {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "latency_ms_injected": cfg.latency_ms,
        "bound_ms": bound,
        "critical_path_calls": len(CRITICAL_PATH),
        "critical_path": [
            {"activity": activity, "target": call.target, "call": call.what}
            for activity, call in CRITICAL_PATH
        ],
        "crew_notified_bound_ms": notified_bound,
        "crew_notified_path_calls": len(CREW_NOTIFIED_PATH),
        "calls_per_booking_expected": {**expected, "total": sum(expected.values())},
        "calls_per_booking_measured": {**measured, "total": sum(measured.values())},
        "primary_variant": primary.name,
        "before_variant": variants[0].name,
        "p50_ms_c1": p50_c1,
        "p95_ms_c1": c1["latency_ms"]["p95"] if c1 else None,
        "p99_ms_c1": c1["latency_ms"]["p99"] if c1 else None,
        "p50_over_bound": round(p50_c1 / bound, 3) if p50_c1 and bound else None,
        "p50_crew_notified_ms_c1": c1["crew_notified_ms"]["p50"] if c1 else None,
        "p95_crew_notified_ms_c1": c1["crew_notified_ms"]["p95"] if c1 else None,
        "sequential_p50_ms": round(sequential_p50, 1) if sequential_p50 else None,
        "sequential_runs_ms": [round(v, 1) for v in baseline],
        "sequential_bound_ms": len(all_calls()) * cfg.latency_ms,
        "p50_c1_over_sequential": (
            round(p50_c1 / sequential_p50, 3) if p50_c1 and sequential_p50 else None
        ),
        "bookings_per_s_c50": c50["bookings_per_s"] if c50 else None,
        "bookings_per_s_max": max((p["bookings_per_s"] or 0.0) for p in mine or phases),
        "variants": summaries,
        "results": phases,
        "crew_confirmation": (
            "crew_confirmation signals sent through the Temporal client as soon as a "
            "visibility query shows BookingStage=awaiting-crew (all invitations sent); "
            "crew_wait_ms is that delay, excluded from latency_ms"
        ),
        "crew_bot": {
            "visibility_queries": bot.queries if bot else 0,
            "signals": bot.signals if bot else 0,
            "errors": (bot.errors[:5] if bot else []),
        },
        "config": {
            **{k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()},
            **stack,
            "cpu_count": os.cpu_count(),
        },
    }
    products = {v.name for v in variants if is_product(v)}
    report["goals"] = goals(report, by_c, [p for p in phases if p["variant"] in products])
    return report
