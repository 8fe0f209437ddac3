"""The bench's verdict on the throughput goal: PASS, MISS (the product's to fix) or CEILING (out
of reach on this machine whatever the worker does), from the figures of one C=50 run."""

from __future__ import annotations

from typing import Any

from charters_dev.bench_report import throughput_goal


def run(rate: float, cpu: dict[str, float], top: str, busy: float = 99.0) -> dict[str, Any]:
    return {
        "variant": "unsandboxed:1",
        "bookings_per_s": rate,
        "cores": 2,
        "saturation": {
            "machine_cpu_busy_pct": busy,
            "other_cpu_pct": 1.0,
            "top_process": top,
            "saturated": f"machine ({busy:.0f}% busy), largest consumer {top}",
        },
        "processes": {k: {"cpu_ms_per_booking": v, "cores_used": 0.5} for k, v in cpu.items()},
    }


def test_the_rest_of_the_stack_alone_over_budget_is_a_ceiling() -> None:
    cpu = {"worker": 160.0, "temporal": 100.0, "moto": 150.0, "standins": 30.0, "faultproxy": 50.0}
    goal = throughput_goal([run(4.1, cpu, top="worker")])
    assert goal["status"] == "CEILING"
    assert "330 ms" in goal["note"] and "250 ms" in goal["note"]


def test_a_worker_that_eats_the_budget_is_a_miss() -> None:
    cpu = {"worker": 300.0, "temporal": 60.0, "moto": 60.0, "standins": 10.0, "faultproxy": 20.0}
    assert throughput_goal([run(4.0, cpu, top="worker")])["status"] == "MISS"


def test_the_goal_met_is_a_pass_and_the_best_run_counts() -> None:
    cpu = {"worker": 50.0, "temporal": 60.0, "moto": 60.0}
    goal = throughput_goal([run(5.0, cpu, top="worker"), run(8.5, cpu, top="worker")])
    assert goal["status"] == "PASS" and goal["value"] == 8.5
