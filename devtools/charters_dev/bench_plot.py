"""The bench's PNG (needs matplotlib, the `bench` extra) and its results file."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from charters_dev.bench_report import GOAL_BOOKINGS_PER_S, GOAL_C1_OVER_BOUND


def plot(report: dict[str, Any], path: Path) -> bool:
    """Latency histogram (the lowest concurrency, against the bound), latency distribution per
    concurrency, throughput and CPU vs concurrency. False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        return False
    primary = [p for p in report["results"] if p["variant"] == report["primary_variant"]]
    results = [p for p in primary if p["latencies_ms"]]
    if not results:
        return False
    fig, (hist, cdf, tput) = plt.subplots(1, 3, figsize=(17, 4.8))
    bound, seq = report["bound_ms"], report["sequential_p50_ms"]
    marks = [(bound, "black", "--", f"bound {bound:g} ms")]
    marks.append((GOAL_C1_OVER_BOUND * bound, "grey", ":", f"{GOAL_C1_OVER_BOUND:g} × bound"))
    if seq:
        marks.append((seq, "red", "-.", f"sequential p50 {seq:.0f} ms"))

    first = results[0]
    hist.hist(first["latencies_ms"], bins=20, color="tab:blue", alpha=0.75)
    for x, colour, style, label in marks:
        hist.axvline(x, color=colour, linestyle=style, label=label)
    hist.set_xlabel("latency: start→result less the crew wait (ms)")
    hist.set_ylabel("bookings")
    hist.yaxis.set_major_locator(MaxNLocator(integer=True))
    hist.set_title(
        f"C={first['concurrency']}: p50 {first['latency_ms']['p50']:.0f} ms "
        f"(+{report['latency_ms_injected']:g} ms per external call)"
    )
    hist.legend(fontsize="small")

    for p in results:
        values = sorted(p["latencies_ms"])
        share = [(i + 1) / len(values) for i in range(len(values))]
        cdf.step(values, share, where="post", label=f"C={p['concurrency']}")
    for x, colour, style, _ in marks[:1]:
        cdf.axvline(x, color=colour, linestyle=style)
    cdf.set_xscale("log")
    cdf.set_xlabel("latency (ms, log scale)")
    cdf.set_ylabel("share of bookings")
    cdf.set_title("Latency distribution per concurrency")
    cdf.legend(fontsize="small")

    for variant in report["variants"]:
        runs = [p for p in report["results"] if p["variant"] == variant["variant"]]
        cs = [p["concurrency"] for p in runs]
        rates = [p["bookings_per_s"] or 0 for p in runs]
        tput.plot(cs, rates, marker="o", label=f"{variant['variant']} bookings/s")
        for c, r in zip(cs, rates, strict=True):
            tput.annotate(f"{r:g}", (c, r), textcoords="offset points", xytext=(0, 6), ha="center")
    tput.axhline(GOAL_BOOKINGS_PER_S, color="grey", linestyle=":", label="goal at C=50")
    tput.set_xlabel("concurrency (bookings in flight)")
    tput.set_ylabel("bookings/s")
    tput.set_ylim(bottom=0)
    tput.set_title("Throughput and CPU vs concurrency")
    busy = tput.twinx()
    busy.plot(
        [p["concurrency"] for p in primary],
        [p["machine_cpu_busy_pct"] or 0 for p in primary],
        marker="s",
        color="tab:red",
        alpha=0.6,
        label=f"machine CPU busy % ({report['primary_variant']})",
    )
    busy.set_ylim(0, 105)
    busy.set_ylabel("CPU busy (%)")
    lines = tput.get_legend_handles_labels()
    more = busy.get_legend_handles_labels()
    tput.legend(lines[0] + more[0], lines[1] + more[1], fontsize="small", loc="center right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def write_results(report: dict[str, Any], out_dir: Path, make_plot: bool = True) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = out_dir / f"{stamp}.json"
    png = out_dir / f"{stamp}.png"
    report["png"] = str(png) if make_plot and plot(report, png) else None
    path.write_text(json.dumps(report, indent=1))
    return path
