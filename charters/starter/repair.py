"""`charters ops repair`: a booking whose history the deployed code does not replay fails its
workflow task on every worker and moves no more. The repair resets it to the last workflow task
the code still reproduces. The server then hands back, as new requests, every crew answer,
operator action and cancel that came after that point, and the steps after it run again: every
effect is found by its idempotency key (docs/idempotency.md), so nothing happens twice."""

from __future__ import annotations

import uuid

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType, ResetReapplyType, WorkflowTaskFailedCause
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import Client, WorkflowHistory

from charters.starter.failures import CliError, Exit, open_workflow
from charters.worker.replay import HistoryReplay, ReplayBreak, replay_break


async def find_break(
    client: Client, workflow_id: str, history: WorkflowHistory | None = None
) -> ReplayBreak | None:
    """Where the booking's history stops replaying, or None when it replays whole."""
    if history is None:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
    failure = await HistoryReplay(client.data_converter).failure(history)
    if failure is None:
        return None
    found = replay_break(history, failure)
    if found is None:
        raise CliError(
            f"booking {workflow_id}'s history does not replay, and the failure names no event "
            f"to reset before ({failure}); reset it from the Web UI",
            Exit.FAILED,
        )
    return found


async def stuck_break(client: Client, workflow_id: str) -> ReplayBreak | None:
    """The break of a booking whose last workflow task failed for nondeterminism (the server
    keeps retrying it, and every worker fails it the same way), or None. Cheap when it is not:
    the replay runs only after such a failure."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    last_task = next(
        (event for event in reversed(history.events) if event.event_type in TASK_OUTCOMES), None
    )
    if last_task is None or last_task.event_type != EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
        return None
    cause = last_task.workflow_task_failed_event_attributes.cause
    if cause != WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR:
        return None
    return await find_break(client, workflow_id, history)


TASK_OUTCOMES = (
    EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
)


async def repair(client: Client, workflow_id: str) -> str:
    """Resets a stuck booking to before the task it can no longer replay; the line to print."""
    described = await open_workflow(client, workflow_id, running=True)
    found = await find_break(client, workflow_id)
    if found is None:
        raise CliError(
            f"booking {workflow_id}'s history replays: nothing to repair (a step waiting for "
            "an operator resumes with `charters retry`; see `charters status`)",
            Exit.REFUSED,
        )
    answer = await client.workflow_service.reset_workflow_execution(
        ResetWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=workflow_id, run_id=described.run_id),
            reason=f"charters ops repair: history does not replay from event {found.event_id}",
            workflow_task_finish_event_id=found.reset_to,
            request_id=str(uuid.uuid4()),
            reset_reapply_type=ResetReapplyType.RESET_REAPPLY_TYPE_ALL_ELIGIBLE,
        )
    )
    return (
        f"{workflow_id}: reset to workflow task {found.reset_to}, before event {found.event_id} "
        f"that this code does not replay (new run {answer.run_id}); the answers and actions "
        "received since are applied again and the steps since run again, each finding its "
        "effect by key"
    )


def stuck_line(workflow_id: str, found: ReplayBreak) -> str:
    """What `status` says of a booking that cannot move, with the command that repairs it."""
    return (
        f"booking {workflow_id} is stuck: its history does not replay from event "
        f"{found.event_id} ({found.failure[:200]}); `charters ops repair {workflow_id}` resets "
        f"it to workflow task {found.reset_to}"
    )
