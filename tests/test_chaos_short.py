"""The chaos run of `make chaos`, short: 20 bookings through 5xx, throttling, resets and slow
answers on every external system, while the Temporal dev server is killed with SIGKILL (and
restarted on its SQLite file), a worker is killed with SIGKILL and the two workers are rolled
(SIGTERM, graceful drain); then every effect is counted in the emulated systems. It runs on a
stack of its own: killing the session stack's server would disturb the other tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from charters_dev.chaos import ChaosConfig, print_report, run_chaos
from charters_dev.chaos_report import write_report
from charters_dev.isolated import QUICK_RETRIES, start_isolated_stack
from charters_dev.stack import DevStack
from rich.console import Console


@pytest.fixture
def own_stack(tmp_path: Path) -> Iterator[DevStack]:
    stack = start_isolated_stack(tmp_path / "chaos", **QUICK_RETRIES)
    try:
        yield stack
    finally:
        stack.stop()


async def test_short_chaos_run_has_no_duplicate_no_loss_no_mismatch(own_stack: DevStack) -> None:
    config = ChaosConfig(
        bookings=20,
        kills=1,
        server_kills=1,
        workers=2,
        rolls=1,
        permanent=("scc-key-hash",),
        operator_share=0.05,
        fault_rate=0.1,
        seed=7,
        concurrency=10,
        booking_timeout_seconds=60,
        final_timeout_seconds=60,
    )
    report = await run_chaos(own_stack, config)
    print()
    print_report(Console(width=200), report)
    print("report:", write_report(report, Path("test-artifacts")))

    assert report["started"] == 20, report["not_started"]
    assert report["lost"] == 0, report["lost_refs"]
    assert report["duplicates"] == 0, json.dumps(report["duplicate_details"], indent=1)
    assert report["missing_effects"] == 0, report["missing_details"]
    assert report["mismatch"] == 0, json.dumps(report["mismatch_details"], indent=1)
    assert report["failed"] == 0, report["failed_reasons"]
    assert report["completed"] + report["cancelled"] == 20
    # every kind of operator action ran, and the workflow answered each
    kinds = {"decline-replace", "replace", "reschedule", "cancel", "second-start"}
    assert set(report["plans"]) >= kinds
    assert report["actions"].get("second-start:refused", 0) >= 1
    assert "second-start:started" not in report["actions"]
    late = {k: n for k, n in report["actions"].items() if k.startswith("late-answer:")}
    assert sum(late.values()) >= 1 and not late.get("late-answer:recorded"), late
    assert report["server_kills"] == 1
    assert report["kills"] == 1
    assert report["rolled_workers"] == 2
    assert report["faults_injected_total"] > 0
    # the permanent fault blocked bookings visibly, and they went on once it was fixed
    (fault,) = report["permanent_faults"]
    assert fault["kind"] == "scc-key-hash" and fault["blocked"], fault
    assert report["blocked_on"].get("scc-service-key-hash", 0) >= 1
    assert report["blocked_then_resumed"] >= len(fault["blocked"])
    assert not report["cli_errors"]
    # What is set apart from the count carries its evidence: for SES, a ledger claim taken over
    # after an attempt that was killed mid-flight; for CloudFront, the same CallerReference,
    # which AWS answers with the first invalidation (moto makes another).
    for dup in report["duplicate_details"]:
        assert dup["class"] in ("ses-window", "cloudfront-same-caller-reference"), dup
        if dup["class"] == "ses-window":
            assert dup.get("ledger_claims", 0) >= dup["count"], dup
