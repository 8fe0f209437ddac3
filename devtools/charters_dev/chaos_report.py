"""The report of a chaos run: figures, the lines scripts look for (`duplicates: N`, `lost: N`,
`mismatch: N`), and the JSON file beside the bench results."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from charters_dev.chaos_config import ChaosConfig, Tracked
from charters_dev.chaos_operators import PLANNED_BLOCKS


def build_report(
    config: ChaosConfig,
    specs: dict[str, str],
    counters: dict[str, dict[str, Any]],
    tracked: list[Tracked],
    layers: dict[str, Any],
    driver_errors: list[str],
    ledger: dict[str, Any],
    total_s: float,
) -> dict[str, Any]:
    by_kind: Counter[str] = Counter()
    for c in counters.values():
        by_kind.update({k: int(v) for k, v in c.get("faults", {}).items() if v})
    histories = ledger["histories"]
    lost = [
        t.ref
        for t, h in zip(tracked, histories, strict=True)
        if t.started and (t.outcome is None or not h.get("exists", False))
    ]
    not_started = [f"{t.ref}: {t.start_error}" for t in tracked if not t.started]
    failed = [t for t in tracked if t.outcome == "failed"]
    counted = [d for d in ledger["duplicates"] if config.strict or d["class"] == "unexplained"]
    unnamed = [t.ref for t in failed if not t.reason]
    reasons = Counter(t.reason or "unnamed" for t in failed)
    report: dict[str, Any] = {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "bookings": len(tracked),
        "started": sum(t.started for t in tracked),
        "completed": sum(t.outcome == "confirmed" for t in tracked),
        "cancelled": sum(t.outcome == "cancelled" for t in tracked),
        "failed": len(failed),
        "failed_reasons": dict(reasons),
        "failed_without_reason": unnamed,
        "not_started": not_started,
        "faults_injected": dict(sorted(by_kind.items())),
        "faults_injected_total": sum(by_kind.values()),
        "faults_by_target": {
            t: {"requests": c.get("requests"), "faults": c.get("faults")}
            for t, c in counters.items()
        },
        "fault_specs": specs,
        "kills": layers["worker_kills"],
        "server_kills": layers["server_kills"],
        "rolled_workers": layers["rolled_workers"],
        "drain_exit_codes": layers["drain_exit_codes"],
        "disruptions": layers["log"],
        "retries": sum(h.get("activity_retries", 0) for h in histories),
        "retry_reasons": retry_reasons(histories),
        "activity_failed_events": sum(h.get("activity_failed_events", 0) for h in histories),
        "workflow_task_timeouts": sum(h.get("workflow_task_timeouts", 0) for h in histories),
        "workflow_task_failures": sum(h.get("workflow_task_failures", 0) for h in histories),
        "workflow_task_failure_causes": {
            t.ref: h["workflow_task_failure_causes"]
            for t, h in zip(tracked, histories, strict=True)
            if h.get("workflow_task_failure_causes")
        },
        "replay_failures": {
            t.ref: h["replay_failure"]
            for t, h in zip(tracked, histories, strict=True)
            if h.get("replay_failure")
        },
        "repairs": {t.ref: t.repairs for t in tracked if t.repairs},
        "plans": dict(Counter(t.plan.kind for t in tracked)),
        "actions": dict(Counter(f"{a['what']}:{a['code']}" for t in tracked for a in t.actions)),
        "answers_recorded": sum(len(t.answered) for t in tracked),
        "updates_accepted": dict(
            sum((Counter(h.get("updates", {})) for h in histories), Counter[str]())
        ),
        "signals_received": sum(h.get("signals", 0) for h in histories),
        "blocked_then_resumed": sum(
            any(not b.startswith(PLANNED_BLOCKS) for b in t.blocked_on)
            and t.outcome in ("confirmed", "cancelled")
            for t in tracked
        ),
        "blocked_on": dict(Counter(b.split(":")[0] for t in tracked for b in t.blocked_on)),
        "permanent_faults": layers.get("permanent", []),
        "cli_errors": layers.get("cli_errors", []),
        "queries_refused_run_ahead": layers.get("queries_refused_run_ahead", 0),
        "duplicates": len(counted),
        "duplicates_all": len(ledger["duplicates"]),
        "duplicates_ses_window": sum(d["class"] == "ses-window" for d in ledger["duplicates"]),
        "cloudfront_same_caller_reference_repeats": sum(
            d["class"] == "cloudfront-same-caller-reference" for d in ledger["duplicates"]
        ),
        "duplicate_details": ledger["duplicates"],
        "lost": len(lost) + len(not_started) + len(ledger["missing"]),
        "lost_bookings": len(lost) + len(not_started),
        "lost_refs": lost,
        "mismatch": len(ledger["mismatch"]),
        "mismatch_details": ledger["mismatch"],
        "missing_effects": len(ledger["missing"]),
        "missing_details": ledger["missing"],
        "ledger_takeovers": ledger["ledger_takeovers"],
        "driver_errors": driver_errors[:20],
        "wall_s": round(total_s, 1),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()},
        "per_booking": ledger["per_booking"],
    }
    report["ok"] = (
        report["duplicates"] == 0
        and report["lost"] == 0
        and report["mismatch"] == 0
        and not report["replay_failures"]
        and not unnamed
    )
    return report


def retry_reasons(histories: list[dict[str, Any]]) -> dict[str, int]:
    """activity: the failure that made it retry (ids and numbers out) -> count, most first."""
    reasons: Counter[str] = Counter()
    for h in histories:
        for r in h.get("retried_activities", []):
            reason = (r["last_failure"] or "no failure recorded").split(" <- ")[0]
            reason = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27,}", "<id>", reason)
            reason = re.sub(r"https?://[^\s)]+", "<url>", reason)
            reason = re.sub(r"\b\d+\b", "N", reason)[:140]
            reasons[f"{r['activity']}: {reason}"] += 1
    return dict(reasons.most_common())


def print_report(console: Console, report: dict[str, Any]) -> None:
    def say(text: str) -> None:
        console.print(text, markup=False, highlight=False, soft_wrap=True)

    say(f"bookings: {report['bookings']}")
    say(f"completed: {report['completed']}")
    reasons = "; ".join(f"{n} x {r}" for r, n in report["failed_reasons"].items())
    say(f"failed: {report['failed']}" + (f" ({reasons})" if reasons else ""))
    kinds = ", ".join(f"{k} {n}" for k, n in report["faults_injected"].items()) or "none"
    say(f"faults injected: {report['faults_injected_total']} ({kinds})")
    for target, figures in report["faults_by_target"].items():
        total = sum((figures["faults"] or {}).values())
        say(f"  {target}: {figures['requests']} requests, {total} faults")
    say(f"server kills: {report['server_kills']}")
    say(f"worker kills: {report['kills']}")
    say(
        f"rolled workers: {report['rolled_workers']} "
        f"(drain exit codes {report['drain_exit_codes']})"
    )
    say(f"retries: {report['retries']} (workflow task timeouts {report['workflow_task_timeouts']})")
    for reason, n in list(report["retry_reasons"].items())[:10]:
        say(f"  {n} x {reason}")
    say(f"cancelled: {report['cancelled']}")
    say(f"blocked then resumed: {report['blocked_then_resumed']} (on {report['blocked_on']})")
    for fault in report["permanent_faults"]:
        say(f"  permanent fault {fault['kind']}: {fault}")
    for event in report["disruptions"]:
        if event.get("error"):
            say(f"  disruption {event['kind']} failed: {event['error']}")
    for line in report["cli_errors"][:10]:
        say(f"  CLI error: {line}")
    say(f"plans: {report['plans']}")
    say(f"actions: {report['actions']}")
    say(f"answers recorded: {report['answers_recorded']}; updates {report['updates_accepted']}")
    if report["ledger_takeovers"]:
        say(f"ledger claims taken over: {len(report['ledger_takeovers'])}")
    for d in report["duplicate_details"][:20]:
        evidence = f", claims {d['ledger_claims']}" if d.get("ledger_claims") else ""
        say(f"  duplicate ({d['class']}): {d['ref']}: {d['count']} x {d['effect']}{evidence}")
    counted = "counted: --strict" if report["config"]["strict"] else "not counted below"
    say(
        "duplicates in the documented SES window (worker killed after the send, before the "
        f"ledger recorded it): {report['duplicates_ses_window']} ({counted})"
    )
    repeats = report["cloudfront_same_caller_reference_repeats"]
    say(
        "CloudFront invalidations repeated with the same CallerReference (AWS answers a repeat "
        f"with the first; moto makes a new one): {repeats}"
    )
    for line in report["missing_details"][:20]:
        say(f"  missing: {line}")
    for ref, wrong in list(report["mismatch_details"].items())[:20]:
        say(f"  mismatch: {ref}: {'; '.join(wrong)}")
    for ref in report["lost_refs"][:20]:
        say(f"  lost: {ref}")
    for ref, causes in list(report["workflow_task_failure_causes"].items())[:20]:
        say(f"  workflow task failed: {ref}: {causes[0]} (its history is in the report)")
    for ref, failure in list(report["replay_failures"].items())[:20]:
        say(f"  does not replay: {ref}: {failure} (its history is in the report)")
    for ref, failures in list(report["repairs"].items())[:20]:
        say(f"  repaired: {ref}: stuck on {failures[0]}")
    say(f"repaired (stuck, reset by `charters ops repair`): {len(report['repairs'])}")
    say(f"missing effects: {report['missing_effects']}")
    say(
        "queries a worker refused rather than run a booking ahead of its history (asked again): "
        f"{report['queries_refused_run_ahead']}"
    )
    say(f"replay failures: {len(report['replay_failures'])} of {report['started']} histories")
    say(f"wall time: {report['wall_s']} s")
    # The two lines scripts look for, verbatim.
    say(f"duplicates: {report['duplicates']}")
    say(f"lost: {report['lost']}")
    say(f"mismatch: {report['mismatch']}")


def write_report(report: dict[str, Any], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out_dir / f"chaos-{stamp}.json"
    path.write_text(json.dumps(report, indent=1, default=str))
    return path
