"""Every workflow runner the worker can be set to (`CHARTERS_WORKFLOW_RUNNER`) runs the booking
workflow the same way: each replays every recorded history without a non-determinism error. The
sandboxed replay of the same histories (tests/test_replay.py) is what keeps the lighter runners
honest: code the sandbox would refuse fails there."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from charters.codec import data_converter
from charters.settings import Settings
from charters.worker.runner import PASSTHROUGH_MODULES, RUNNERS, RunnerName, workflow_runner
from charters.workflows.charter_booking import CharterBookingWorkflow
from tests.test_replay import workflow_id_of

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_runner_setting_names_the_runner() -> None:
    assert Settings(workflow_runner="unsandboxed").workflow_runner == "unsandboxed"
    with pytest.raises(ValidationError):
        Settings(workflow_runner="no-sandbox")  # type: ignore[arg-type]
    assert isinstance(workflow_runner("unsandboxed"), UnsandboxedWorkflowRunner)
    sandboxed = workflow_runner("sandboxed")
    passthrough = workflow_runner("passthrough")
    assert isinstance(sandboxed, SandboxedWorkflowRunner)
    assert isinstance(passthrough, SandboxedWorkflowRunner)
    assert not set(PASSTHROUGH_MODULES) <= sandboxed.restrictions.passthrough_modules
    assert set(PASSTHROUGH_MODULES) <= passthrough.restrictions.passthrough_modules


async def _replays(runner: RunnerName) -> dict[str, bool]:
    """Each recorded history: does it replay cleanly with `runner`?"""
    replayer = Replayer(
        workflows=[CharterBookingWorkflow],
        data_converter=data_converter(None),
        workflow_runner=workflow_runner(runner),
    )
    clean: dict[str, bool] = {}
    for path in HISTORIES:
        raw = json.loads(path.read_text())
        history = WorkflowHistory.from_json(workflow_id_of(raw, path.stem), raw)
        outcome = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        clean[path.name] = outcome.replay_failure is None
    return clean


@pytest.mark.parametrize("runner", [r for r in RUNNERS if r != "sandboxed"])
async def test_lighter_runners_replay_every_history_as_the_sandbox_does(runner: RunnerName) -> None:
    """Whether a history replays must not depend on the runner: the sandboxed verdict (which
    tests/test_replay.py requires to be clean) is the reference."""
    assert HISTORIES, "no recorded histories"
    assert await _replays(runner) == await _replays("sandboxed")
