"""`charters bench` on a tiny run through the same code path as `make bench`: its own fresh stack,
2 bookings at C=1 with the configuration before issue 13 (sandboxed runner, one
worker) and then with two passthrough workers, every external call delayed 5 ms. Checks the
shape and sanity of the results file, never a performance goal (those depend on the machine)."""

from __future__ import annotations

import io
import json
from pathlib import Path

from charters_dev.bench import CRITICAL_PATH, BenchConfig, all_calls, run_bench
from rich.console import Console

LATENCY_MS = 5.0
REQUIRED = {
    "bound_ms",
    "p50_ms_c1",
    "p95_ms_c1",
    "p99_ms_c1",
    "p50_over_bound",
    "sequential_p50_ms",
    "bookings_per_s_c50",
    "latency_ms_injected",
    "results",
    "goals",
    "critical_path",
    "calls_per_booking_measured",
    "png",
}


def test_bench_tiny_run_writes_sane_results(tmp_path: Path) -> None:
    out = io.StringIO()
    config = BenchConfig(
        concurrency=[1],
        bookings=[2],
        latency_ms=LATENCY_MS,
        baseline_runs=1,
        warmup=1,
        out_dir=tmp_path,
        variants=["sandboxed:1:regular", "passthrough:2"],  # before/after, two worker processes
    )
    code = run_bench(config, Console(file=out, width=160))
    assert code == 0, out.getvalue()
    [path] = tmp_path.glob("*.json")
    report = json.loads(path.read_text())

    assert not REQUIRED - report.keys()
    bound = len(CRITICAL_PATH) * LATENCY_MS
    assert report["latency_ms_injected"] == LATENCY_MS
    assert report["bound_ms"] == bound == 10 * LATENCY_MS
    # Every call on the chain sleeps in the proxy: nothing finishes under the bound.
    assert report["p50_ms_c1"] >= bound
    assert report["p50_ms_c1"] <= report["p95_ms_c1"] <= report["p99_ms_c1"]
    assert report["p50_over_bound"] == round(report["p50_ms_c1"] / bound, 3)
    assert report["sequential_p50_ms"] >= len(all_calls()) * LATENCY_MS
    assert report["bookings_per_s_c50"] is None  # no C=50 run here

    measured = report["calls_per_booking_measured"]
    expected = report["calls_per_booking_expected"]
    assert measured["total"] >= expected["total"] == 19
    assert measured["total"] <= expected["total"] + 3  # a secret read after a cache expiry

    # before and after in one run: each variant through every concurrency given
    assert [(r["variant"], r["concurrency"]) for r in report["results"]] == [
        ("sandboxed:1:regular", 1),
        ("passthrough:2", 1),
    ]
    assert report["before_variant"] == "sandboxed:1:regular"
    assert report["primary_variant"] == "passthrough:2"  # no passthrough:1 asked for
    assert report["crew_notified_bound_ms"] == 7 * LATENCY_MS
    assert report["p50_crew_notified_ms_c1"] >= report["crew_notified_bound_ms"]
    assert [v["variant"] for v in report["variants"]] == ["sandboxed:1:regular", "passthrough:2"]
    for variant in report["variants"]:
        assert set(variant["by_concurrency"]) == {"1"}
        assert variant["throughput_stops"] is not None
    for result in report["results"]:
        assert result["processes"]["worker"].get("process_count", 1) == result["workers"]
        cpu = result["cpu_ms_per_booking"]
        assert cpu["worker"] > 0 and cpu["server"] > 0 and cpu["emulators"] > 0
        assert result["events_per_booking"] > 0
        assert result["crew_notified_ms"]["p50"] < result["latency_ms"]["p50"]
    events = {r["variant"]: r["events_per_booking"] for r in report["results"]}
    assert events["passthrough:2"] < events["sandboxed:1:regular"], "local-first: fewer events"
    for result in report["results"]:  # time inside activities, local ones (markers) included
        assert result["in_activities_ms"]["p50"] > 0, result["variant"]
    local = [r["history_per_booking"]["local_activities"] for r in report["results"]]
    assert local[0] == 0 < local[-1]  # regular steps: none is local, the validation included
    for result in report["results"]:
        assert result["completed"] == 2 and result["failed"] == 0, result["errors"]
        assert result["bookings_per_s"] > 0
        assert len(result["latencies_ms"]) == 2
        assert all(v >= bound for v in result["latencies_ms"])
        assert result["crew_wait_ms"]["p50"] >= 0
        assert result["to_awaiting_crew_ms"]["p50"] > 0
        for name in ("worker", "temporal"):
            figures = result["processes"][name]
            assert figures["cpu_ms_per_booking"] > 0
            assert figures["peak_rss_mb"] > 0

    assert report["goals"]["c50_worker_cpu"]["status"] == "n/a"
    for goal in report["goals"].values():
        assert goal["status"] in ("PASS", "MISS", "CEILING", "n/a")
    assert report["goals"]["c50_throughput"]["status"] == "n/a"

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert report["png"] is None
    else:
        assert report["png"] and Path(report["png"]).stat().st_size > 0
    assert "charters bench" in out.getvalue()
