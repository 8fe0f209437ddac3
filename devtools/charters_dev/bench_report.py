"""The bench's figures per run and per variant, its verdicts on the goals, and its console table.

Saturation: a Python process (the worker, moto, the stand-ins) runs its Python on one core at a
time (the GIL), so it is saturated near one core used; the Temporal server (Go) and the machine
are saturated when every core is busy."""

from __future__ import annotations

import statistics
from typing import Any

from rich.console import Console
from rich.table import Table

from charters_dev.bench_history import Sample
from charters_dev.bench_meter import EMULATORS, SERVER, summary
from charters_dev.bench_workers import Variant

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


# ---- console --------------------------------------------------------------------------------

COLUMNS = (
    "variant",
    "C",
    "done",
    "bookings/s",
    "p50",
    "p95",
    "crew notified p50/p95",
    "worker ms/bk",
    "server ms/bk",
    "emul. ms/bk",
    "events/bk",
    "CPU busy (stack)",
    "saturated",
)


def _short(sat: dict[str, Any]) -> str:
    if sat["machine_cpu_busy_pct"] >= BUSY_PCT:
        return f"all cores ({sat['top_process']} first)"
    return ", ".join(sat["single_process_full"]) or "-"


def print_report(console: Console, report: dict[str, Any]) -> None:
    if not console.is_terminal and console.width < 180:
        console = Console(file=console.file, width=180)
    table = Table(
        title=f"charters bench · every external call +{report['latency_ms_injected']:g} ms"
    )
    for name in COLUMNS:
        table.add_column(name, justify="left" if name in ("variant", "saturated") else "right")
    for p in report["results"]:
        lat, cpu, notified = p["latency_ms"], p["cpu_ms_per_booking"], p["crew_notified_ms"]
        table.add_row(
            p["variant"],
            str(p["concurrency"]),
            f"{p['completed']}/{p['bookings']}",
            f"{p['bookings_per_s']}",
            f"{lat['p50']}",
            f"{lat['p95']}",
            f"{notified['p50']} / {notified['p95']}",
            f"{cpu['worker']}",
            f"{cpu['server']}",
            f"{cpu['emulators']}",
            f"{p['events_per_booking']}",
            f"{p['machine_cpu_busy_pct']}% ({p['stack_cpu_pct']}%)",
            _short(p["saturation"]),
        )
    console.print(table)
    noisy = max((p["other_cpu_pct"] or 0.0) for p in report["results"])
    if noisy >= 10:
        console.print(
            f"[yellow]note:[/] up to {noisy:.0f}% of the machine's CPU went to processes outside "
            "the bench stack during a run: throughput is lower than a quiet machine gives (CPU "
            "per booking much less so)"
        )
    console.print(
        f"latencies in ms, start→result less the crew wait (bound {report['bound_ms']:g} ms = "
        f"{report['critical_path_calls']} calls × {report['latency_ms_injected']:g} ms); crew "
        f"notified = start→last invitation sent (bound {report['crew_notified_bound_ms']:g} ms); "
        "CPU per booking in ms (server: Temporal; emul.: moto, stand-ins, fault proxy)"
    )
    measured, expected = report["calls_per_booking_measured"], report["calls_per_booking_expected"]
    console.print(
        f"calls per booking measured {measured} (expected {expected}) · sequential baseline "
        f"p50 {report['sequential_p50_ms']} ms"
    )
    _print_before_after(console, report)
    for v in report["variants"]:
        stops = v["throughput_stops"] or {}
        where = stops.get("between_concurrency")
        console.print(
            f"{v['variant']}: throughput "
            + (f"stops growing between C={where[0]} and C={where[1]}" if where else "still grows")
            + f"; saturated: {stops.get('saturated') or 'nothing (latency-bound)'}"
        )
    for name, goal in report["goals"].items():
        colour = {"PASS": "green", "MISS": "red"}.get(goal["status"], "yellow")
        extra = f" ({goal['note']})" if goal.get("note") else ""
        console.print(
            f"[{colour}]{goal['status']}[/] {name}: {goal['target']}, got {goal.get('value')}"
            f"{extra}"
        )


def _print_before_after(console: Console, report: dict[str, Any]) -> None:
    before, after = report["before_variant"], report["primary_variant"]
    if before == after:
        return
    by = {v["variant"]: v["by_concurrency"] for v in report["variants"]}
    for c, fig in by.get(after, {}).items():
        old = by.get(before, {}).get(c)
        if not old:
            continue
        w0, w1 = old["cpu_ms_per_booking"]["worker"], fig["cpu_ms_per_booking"]["worker"]
        ratio = f" ({w1 / w0:.2f}×)" if w0 else ""
        t0 = old.get("worker_cpu_ms_per_booking_by_thread") or {}
        t1 = fig.get("worker_cpu_ms_per_booking_by_thread") or {}
        split = ", ".join(f"{k} {t0.get(k, 0):g} → {v:g}" for k, v in t1.items() if v)
        console.print(
            f"before {before} → after {after} at C={c}: worker {w0} → {w1} ms/booking{ratio}"
            + (f" ({split})" if split else "")
            + ", "
            f"server {old['cpu_ms_per_booking']['server']} → {fig['cpu_ms_per_booking']['server']}"
            f", events {old['events_per_booking']} → {fig['events_per_booking']}"
        )
