"""The chaos run of `make chaos`, short: 20 bookings through 5xx, throttling, resets and slow
answers on every external system while the worker is killed twice with SIGKILL; then every
effect is counted in the emulated systems. It reuses the session stack: the ledger is filtered by
this run's booking references, and the faults are switched off again at the end."""

from __future__ import annotations

import json

from charters_dev.chaos import PROXY_TARGETS, ChaosConfig, print_report, run_chaos
from charters_dev.stack import DevStack
from rich.console import Console


async def test_short_chaos_run_has_no_duplicate_and_no_loss(stack: DevStack) -> None:
    config = ChaosConfig(
        bookings=20,
        kills=2,
        fault_rate=0.1,
        seed=7,
        concurrency=10,
        booking_timeout_seconds=90,
        final_timeout_seconds=90,
    )
    try:
        report = await run_chaos(stack, config)
    finally:
        for target in PROXY_TARGETS:
            stack.set_faults(target, "")
            stack.reset_fault_counters(target)
    print()
    print_report(Console(width=200), report)

    assert report["started"] == 20, report["not_started"]
    assert report["lost"] == 0, report["lost_refs"]
    assert report["duplicates"] == 0, json.dumps(report["duplicate_details"], indent=1)
    assert report["missing_effects"] == 0, report["missing_details"]
    assert report["completed"] + report["failed"] == 20
    assert not report["failed_without_reason"]
    assert report["kills"] == 2
    assert report["faults_injected_total"] > 0
    assert report["signals_received"] == report["signals_sent"] == 60
    # What is set apart from the count carries its evidence: a ledger claim taken over after an
    # attempt that was killed mid-flight.
    for dup in report["duplicate_details"]:
        assert dup["class"] in ("ses-window", "cloudfront-same-caller-reference"), dup
        assert dup.get("ledger_claims", 0) >= dup["count"], dup
