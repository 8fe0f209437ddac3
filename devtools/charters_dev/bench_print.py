"""The bench's console table and its before/after lines, from a report `bench_report` built."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from charters_dev.bench_report import BUSY_PCT

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
