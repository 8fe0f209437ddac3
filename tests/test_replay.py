"""Replays recorded CharterBookingWorkflow histories against the current workflow code.

Every `tests/histories/*.json` must replay without a non-determinism error: a change to the
workflow that would break bookings already running fails here first (after the first deploy,
guard such a change with `workflow.patched(...)`: see the README's versioning policy). The
histories are recorded without a payload codec, so they replay without keys (their payloads are
test data only: no real guest, no secret).

The files are committed. A missing one fails the test, unless `CHARTERS_RECORD_HISTORIES=1`,
in which case it is recorded on the Temporal dev server with the outside world in memory
(see tests/history_scenarios.py) and then replayed. To re-record one,
delete it and run `CHARTERS_RECORD_HISTORIES=1 .venv/bin/pytest tests/test_replay.py`.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from charters import contract
from charters.codec import data_converter
from charters.worker.runner import workflow_runner
from charters.workflows.charter_booking import CharterBookingWorkflow
from tests.history_scenarios import SCENARIOS, closing_event, expected_outcome
from tests.workflow_harness import live_harness

HISTORIES = Path(__file__).parent / "histories"
RECORD = os.environ.get("CHARTERS_RECORD_HISTORIES") == "1"

NAMES = sorted(set(SCENARIOS) | {p.stem for p in HISTORIES.glob("*.json")})


def _payload_json(payloads: dict[str, Any]) -> Any:
    """The first payload of a JSON history, decoded (no codec: plain json/plain)."""
    first = payloads["payloads"][0]
    return json.loads(base64.b64decode(first["data"]))


def workflow_id_of(history: dict[str, Any], fallback: str) -> str:
    """History JSON carries no workflow id; the booking input names the booking."""
    try:
        attrs = history["events"][0]["workflowExecutionStartedEventAttributes"]
        ref = _payload_json(attrs["input"])["booking"]["booking_ref"]
    except (KeyError, IndexError, ValueError, TypeError):
        return fallback
    return contract.workflow_id_for(str(ref))


async def record(name: str, path: Path) -> None:
    """Runs the scenario on the dev server with the world in memory and writes the history of
    the run it names."""
    scenario = SCENARIOS[name][0]
    async with live_harness() as h:
        handle = await scenario(h)
        history = await handle.fetch_history()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(history.to_json() + "\n")


def test_the_sandbox_checks_the_workflow_modules_themselves() -> None:
    """The replay runs every workflow module inside the sandbox: only data types, the contract
    and libraries pass through, never `charters.workflows` or `charters` as a whole."""
    passed = workflow_runner("sandboxed").restrictions.passthrough_modules  # type: ignore[attr-defined]
    assert "charters" not in passed and not any(m.startswith("charters.workflows") for m in passed)
    assert "charters.models" in passed


@pytest.mark.parametrize("name", NAMES)
async def test_history_replays(name: str) -> None:
    path = HISTORIES / f"{name}.json"
    if not path.exists():
        if not RECORD or name not in SCENARIOS:
            pytest.fail(f"{path} is missing: record it with CHARTERS_RECORD_HISTORIES=1")
        await record(name, path)

    raw = json.loads(path.read_text())
    events = raw["events"]
    assert events[0]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"
    assert events[0]["workflowExecutionStartedEventAttributes"]["workflowType"]["name"] == (
        contract.WORKFLOW_NAME
    )
    last = events[-1]
    if name in SCENARIOS and closing_event(name) is not None:
        assert last["eventType"] == closing_event(name), last["eventType"]
        outcome = expected_outcome(name)
        if outcome is not None:
            result = _payload_json(last["workflowExecutionCompletedEventAttributes"]["result"])
            assert result["outcome"] == outcome

    history = WorkflowHistory.from_json(workflow_id_of(raw, f"charter-replay-{name}"), raw)
    # debug_mode: no deadlock detector, which a loaded CI machine can trip in the sandbox's
    # first import; determinism is checked all the same. The full sandbox, whatever runner
    # production uses: it refuses non-deterministic code.
    replayer = Replayer(
        workflows=[CharterBookingWorkflow],
        data_converter=data_converter(None),
        debug_mode=True,
        workflow_runner=workflow_runner("sandboxed"),
    )
    replayed = await replayer.replay_workflow(history)
    assert replayed.replay_failure is None
