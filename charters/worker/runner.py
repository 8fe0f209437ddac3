"""Which workflow runner the worker uses (`CHARTERS_WORKFLOW_RUNNER`), and why the default.

- `sandboxed`: the SDK's default sandbox. Every workflow run (a new booking, or a booking evicted
  from the cache and replayed) re-imports the workflow module and everything it imports that is
  not passed through, inside a fresh sandbox: ~11 ms per instance, more without `.pyc` files.
- `passthrough` (default): the same sandbox, with the product's own modules and the libraries they
  use passed through (imported once, shared by every run). The sandbox still runs each workflow
  in its own globals and still refuses non-deterministic calls made through restricted modules
  the workflow code imports itself; what it no longer re-checks is code inside `charters`, whose
  workflow-side modules (contract, errors, models, the workflow) are deterministic by review and
  by the replay tests (tests/test_replay.py replays every recorded history with the full
  sandbox).
- `unsandboxed`: no sandbox at all (`UnsandboxedWorkflowRunner`); the cheapest, and safe only
  because CI replays every recorded history sandboxed.

`make bench` measures the three side by side (`--runners`).
"""

from __future__ import annotations

from typing import Literal

from temporalio.worker import UnsandboxedWorkflowRunner, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

RunnerName = Literal["sandboxed", "passthrough", "unsandboxed"]
RUNNERS: tuple[RunnerName, ...] = ("sandboxed", "passthrough", "unsandboxed")

# Imported by the workflow's side (charters.workflows, charters.models, contract, errors and the
# activity classes it names): deterministic at import, no state shared between runs that a run
# changes. The libraries are what those modules import at module level.
PASSTHROUGH_MODULES = ("charters", "pydantic", "pydantic_core", "annotated_types", "httpx")


def workflow_runner(name: RunnerName) -> WorkflowRunner:
    """The runner named by the `workflow_runner` setting."""
    if name == "unsandboxed":
        return UnsandboxedWorkflowRunner()
    restrictions = SandboxRestrictions.default
    if name == "passthrough":
        restrictions = restrictions.with_passthrough_modules(*PASSTHROUGH_MODULES)
    return SandboxedWorkflowRunner(restrictions=restrictions)
