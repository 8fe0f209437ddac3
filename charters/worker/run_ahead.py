"""A guard against the SDK running a booking ahead of its history while answering a query.

A query that finds no workflow task pending is dispatched straight to the task queue. If no
worker polls for a while (a deploy, a killed worker), an activity can complete meanwhile. The
worker that takes the query gets the whole history, that result included, and the SDK's core
applies the result as if a workflow task had started: the workflow reacts and its commands wait in
the core. The next workflow task may bring an update, which the workflow then accepts after
those commands, while every replay applies the result and the update together and accepts the
update first. The booking's history no longer replays, and every other worker fails it
(`python -m charters_dev.sdk_query_run_ahead` shows it in twenty lines of workflow).

Such an activation is recognisable: it is not a replay, it carries results, history has grown
since the previous activation, and yet the workflow's clock has not moved, because no workflow
task has started (the clock is the start time of the current workflow task). The guard fails that
activation without running the workflow: the core then drops the run from its cache and fails
the query (its caller may ask again), and the next workflow task replays the run from its
history, where the result and the update arrive together, as in every replay."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import temporalio.workflow
from temporalio.bridge.proto.workflow_activation import WorkflowActivation
from temporalio.bridge.proto.workflow_completion import WorkflowActivationCompletion
from temporalio.worker import WorkflowInstance, WorkflowInstanceDetails, WorkflowRunner

from charters import contract

logger = logging.getLogger(__name__)

REFUSAL = (
    f"{contract.QUERY_REFUSED_RUN_AHEAD} (a query met new events): the run is dropped from the "
    "cache and replayed by the next workflow task; ask again"
)
REFUSED_LOG = "refused to run workflow"
"""How each refusal starts in the worker's log (chaos counts them)."""

PASSIVE_JOBS = frozenset({"query_workflow", "remove_from_cache"})
"""Jobs that change nothing in the run: a query is answered from the state as it is."""


class RunAheadGuard(WorkflowRunner):
    """Wraps the worker's runner; each workflow run gets a `GuardedInstance`."""

    def __init__(self, runner: WorkflowRunner) -> None:
        self.runner = runner

    def prepare_workflow(self, defn: Any) -> None:
        self.runner.prepare_workflow(defn)

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return GuardedInstance(self.runner.create_instance(det))

    def set_worker_level_failure_exception_types(
        self, types: Sequence[type[BaseException]]
    ) -> None:
        self.runner.set_worker_level_failure_exception_types(types)


class GuardedInstance(WorkflowInstance):
    """One run: passes every activation through but the ones applied ahead of a task."""

    def __init__(self, instance: WorkflowInstance) -> None:
        self.instance = instance
        self.history_length = 0
        self.clock = -1

    def activate(self, act: WorkflowActivation) -> WorkflowActivationCompletion:
        clock = act.timestamp.ToNanoseconds()
        if self.applied_ahead(act, clock):
            logger.warning(
                f"{REFUSED_LOG} %s ahead of its history (events to %d, no workflow task "
                "started since %d); it is replayed by the next workflow task",
                self.instance.get_info().workflow_id,
                act.history_length,
                self.history_length,
            )
            completion = WorkflowActivationCompletion(run_id=act.run_id)
            completion.failed.failure.message = REFUSAL
            return completion
        if act.history_length:
            self.history_length = act.history_length
            self.clock = clock
        return self.instance.activate(act)

    def applied_ahead(self, act: WorkflowActivation, clock: int) -> bool:
        """New history, not replayed, with the workflow's clock where the last task left it."""
        if act.is_replaying or not act.history_length or self.clock < 0:
            return False
        if all(job.WhichOneof("variant") in PASSIVE_JOBS for job in act.jobs):
            return False
        return act.history_length > self.history_length and clock == self.clock

    def get_serialization_context(self, command_info: Any) -> Any:
        return self.instance.get_serialization_context(command_info)

    def get_external_store_context(self, command_info: Any) -> Any:
        return self.instance.get_external_store_context(command_info)

    def get_info(self) -> temporalio.workflow.Info:
        return self.instance.get_info()

    def get_thread_id(self) -> int | None:
        return self.instance.get_thread_id()
