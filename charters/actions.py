"""People's actions on a booking as Workflow Updates, and the queries that read it: every caller
(CLI, confirmation page, chaos) gets the workflow's own `Verdict`, or a refusal that says why,
never a traceback."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta
from typing import Any, TypeVar

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from charters import contract
from charters.models import BookingResult, BookingStatus, Verdict

SETTLED_STAGES = contract.SETTLED_STAGES
T = TypeVar("T")
QUERY_ATTEMPTS = 3

UPDATE_TIMEOUT = timedelta(seconds=20)


# The server's answer when the workflow task that carried the update failed (e.g. a signal
# arrived while the workflow was completing: UnhandledCommand): the update was never accepted,
# so it is not in history and can be sent again, under the same update id.
DROPPED_UPDATE = "unexpected workflow task failure"
DROPPED_UPDATE_ATTEMPTS = 3
CLOSING_CHECKS = 8


async def act(client: Client, workflow_id: str, update: str, arg: Any) -> Verdict:
    """Run `update` on the booking's workflow and return its verdict."""
    handle = client.get_workflow_handle(workflow_id)
    update_id = f"{update}-{uuid.uuid4().hex}"
    try:
        for attempt in range(DROPPED_UPDATE_ATTEMPTS):
            try:
                return await handle.execute_update(
                    update, arg, id=update_id, result_type=Verdict, rpc_timeout=UPDATE_TIMEOUT
                )
            except RPCError as exc:
                if DROPPED_UPDATE not in exc.message or attempt == DROPPED_UPDATE_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.5 * (attempt + 1))
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError):
            return Verdict(
                recorded=False, code=cause.type or contract.REFUSED_INVALID, message=cause.message
            )
        return Verdict(recorded=False, code=contract.REFUSED_INVALID, message=str(cause or exc))
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND or "already completed" in exc.message:
            return await _closed(client, workflow_id, exc)
        raise


async def _closed(client: Client, workflow_id: str, refused: RPCError) -> Verdict:
    """Why the server refused the update, from the workflow itself: an update that reaches a
    booking while it completes is refused as not found, whatever the message says."""
    for _ in range(CLOSING_CHECKS):
        try:
            described = await client.get_workflow_handle(workflow_id).describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return Verdict(
                    recorded=False,
                    code=contract.REFUSED_UNKNOWN_BOOKING,
                    message=f"no booking workflow {workflow_id}",
                )
            raise
        if described.status != WorkflowExecutionStatus.RUNNING:
            break
        await asyncio.sleep(0.25)  # the booking's completion not visible yet
    else:
        raise refused
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


async def ask(
    handle: WorkflowHandle[Any, Any],
    query: str,
    result_type: type[T],
    rpc_timeout: timedelta | None = None,
) -> T:
    """A query, asked again when the worker refused it rather than run the booking ahead of its
    history (`charters.worker.run_ahead`): by then the next workflow task has replayed the run."""
    for attempt in range(1, QUERY_ATTEMPTS):
        try:
            answer: T = await handle.query(query, result_type=result_type, rpc_timeout=rpc_timeout)
            return answer
        except WorkflowQueryFailedError as exc:
            if contract.QUERY_REFUSED_RUN_AHEAD not in str(exc):
                raise
        await asyncio.sleep(0.2 * attempt)
    last: T = await handle.query(query, result_type=result_type, rpc_timeout=rpc_timeout)
    return last


async def settled(
    handle: WorkflowHandle[Any, Any], timeout: float = 90.0, poll: float = 0.25
) -> BookingResult:
    """The booking's result once it has settled: crew confirmed (the workflow itself goes on to
    the trip), cancelled (by update or natively), or completed. A failed workflow raises as
    `handle.result()` does."""
    client = handle._client  # noqa: SLF001 - the handle's own client, not a new connection
    current = client.get_workflow_handle(handle.id, result_type=BookingResult)
    deadline = time.monotonic() + timeout
    while True:
        described = await current.describe()
        if described.status == WorkflowExecutionStatus.COMPLETED:
            return await current.result()
        if described.status == WorkflowExecutionStatus.CANCELED:
            return await ask(current, contract.QUERY_RESULT, BookingResult)
        if described.status not in (
            WorkflowExecutionStatus.RUNNING,
            WorkflowExecutionStatus.CONTINUED_AS_NEW,
        ):
            await current.result()
        if described.status == WorkflowExecutionStatus.RUNNING:
            status = await ask(current, contract.QUERY_STATUS, BookingStatus)
            if status.stage in SETTLED_STAGES:
                return await ask(current, contract.QUERY_RESULT, BookingResult)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{handle.id} did not settle in {timeout:g} s")
        await asyncio.sleep(poll)
