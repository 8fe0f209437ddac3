"""People's actions on a booking as Workflow Updates: every caller (CLI, confirmation page,
chaos) gets the workflow's own `Verdict`, or a refusal that says why, never a traceback."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from charters import contract
from charters.models import Verdict

UPDATE_TIMEOUT = timedelta(seconds=20)


async def act(client: Client, workflow_id: str, update: str, arg: Any) -> Verdict:
    """Run `update` on the booking's workflow and return its verdict."""
    handle = client.get_workflow_handle(workflow_id)
    try:
        return await handle.execute_update(
            update, arg, result_type=Verdict, rpc_timeout=UPDATE_TIMEOUT
        )
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError):
            return Verdict(
                recorded=False, code=cause.type or contract.REFUSED_INVALID, message=cause.message
            )
        return Verdict(recorded=False, code=contract.REFUSED_INVALID, message=str(cause or exc))
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            if "already completed" in exc.message or "completed" in exc.message:
                return await _closed(client, workflow_id)
            return Verdict(
                recorded=False,
                code=contract.REFUSED_UNKNOWN_BOOKING,
                message=f"no booking workflow {workflow_id}",
            )
        if "already completed" in exc.message:
            return await _closed(client, workflow_id)
        raise


async def _closed(client: Client, workflow_id: str) -> Verdict:
    described = await client.get_workflow_handle(workflow_id).describe()
    status = described.status
    how = (
        {
            WorkflowExecutionStatus.COMPLETED: "is over (completed)",
            WorkflowExecutionStatus.CANCELED: "was cancelled",
            WorkflowExecutionStatus.TERMINATED: "was terminated",
            WorkflowExecutionStatus.FAILED: "failed",
            WorkflowExecutionStatus.TIMED_OUT: "timed out",
        }.get(status, "is closed")
        if status
        else "is closed"
    )
    return Verdict(
        recorded=False, code=contract.REFUSED_CLOSED, message=f"booking {workflow_id} {how}"
    )
