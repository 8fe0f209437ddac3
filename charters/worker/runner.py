"""Which workflow runner the worker uses (`CHARTERS_WORKFLOW_RUNNER`), and why the default.

- `sandboxed`: the SDK's default sandbox (the bench's baseline). Every workflow run
  (a new booking, or one evicted from the cache and replayed) re-imports the workflow modules and
  everything they import that is not passed through, in a fresh sandbox (~11 ms per instance,
  more without `.pyc` files), and every activation and payload conversion crosses into it.
- `passthrough`: the same sandbox with the product's own modules and the libraries they use
  passed through (imported once, shared by every run). The sandbox still gives each run its own
  globals and refuses non-deterministic calls through the modules it still proxies; it no longer
  re-checks code inside `charters`. The per-activation crossings remain.
- `unsandboxed` (default): `UnsandboxedWorkflowRunner`, no sandbox at all. Determinism is then
  guarded where it is cheap: CI replays every recorded history with the full sandbox
  (tests/test_replay.py), so workflow code the sandbox would refuse fails there, and the workflow
  modules use only `workflow.now()`, `workflow.random()`, timers and activities by review. What
  production gives up is the sandbox's run-time refusal of a non-deterministic call on a code
  path no recorded history covers.

Replaying one recorded booking history (168 events) in one process cost 145-156 ms of CPU
sandboxed, 94-100 ms passed through and 59-65 ms unsandboxed (the pre-rewrite histories).
`make bench` measures them side by side (`--variant`).
"""

from __future__ import annotations

from typing import Literal

from temporalio.worker import UnsandboxedWorkflowRunner, Worker, WorkflowRunner
from temporalio.worker._workflow_instance import _WorkflowLogicFlag
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

RunnerName = Literal["sandboxed", "passthrough", "unsandboxed"]
RUNNERS: tuple[RunnerName, ...] = ("sandboxed", "passthrough", "unsandboxed")

# Imported by the workflow's side (charters.workflows, charters.models, contract, errors and the
# activity classes it names): deterministic at import, no state shared between runs that a run
# changes. The libraries are what those modules import at module level.
PASSTHROUGH_MODULES = ("charters", "pydantic", "pydantic_core", "annotated_types", "httpx")
# The full sandbox (and the replay gate) passes through only the data types and names the
# workflow shares with the rest of the product, and the libraries they use: the workflow's own
# modules (charters.workflows.*) are imported and checked inside the sandbox.
SANDBOX_PASSTHROUGH_MODULES = (
    "charters.models",
    "charters.contract",
    "charters.errors",
    "pydantic",
    "pydantic_core",
    "annotated_types",
    "httpx",
)


def workflow_runner(name: RunnerName) -> WorkflowRunner:
    """The runner named by the `workflow_runner` setting."""
    if name == "unsandboxed":
        return UnsandboxedWorkflowRunner()
    restrictions = SandboxRestrictions.default.with_passthrough_modules(
        *(PASSTHROUGH_MODULES if name == "passthrough" else SANDBOX_PASSTHROUGH_MODULES)
    )
    return SandboxedWorkflowRunner(restrictions=restrictions)


def worker_runner(name: RunnerName) -> WorkflowRunner:
    """The runner a booking worker uses: the one named, behind the guard that keeps a query from
    running a booking ahead of its history (`charters.worker.run_ahead`). Replays need no guard:
    they apply only what workflow tasks started."""
    from charters.worker.run_ahead import RunAheadGuard

    return RunAheadGuard(workflow_runner(name))


def apply_activation_jobs_together(worker: Worker) -> Worker:
    """Every job of an activation (a signal, an update, an activity's or timer's result) is
    applied before any workflow task runs, the same on replay as when the history was made.

    Without it the SDK runs signal and update handlers first, then the loop, then the results,
    and a replay can meet a local activity's result and a signal in one activation where the
    original met them in two: the booking's errands and handlers then issue commands in another
    order and the replay fails (temporalio/sdk-python#673; the SDK's TODO makes this flag the
    default after two releases). The flag is recorded in each workflow task it shapes, so the
    replayer and older workers follow it for those histories."""
    worker._set_default_workflow_logic_flag(
        _WorkflowLogicFlag.PROCESS_WORKFLOW_ACTIVATION_JOBS_AS_SINGLE_BATCH, enabled=True
    )
    return worker
