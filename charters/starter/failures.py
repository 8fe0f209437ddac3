"""How the CLI fails: one line on stderr and an exit code per kind of error, so an operator
reads what to do and a script can branch on the code. Tracebacks only with `--debug`."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from typing import Any, TypeVar

import typer
from pydantic import ValidationError
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowQueryFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.service import RPCError, RPCStatusCode

from charters.models import Verdict, describe_validation_error
from charters.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


class Exit(IntEnum):
    """The exit codes of every `charters` command (the README's table is this one)."""

    OK = 0
    FAILED = 1  # the booking's workflow failed (`result`), or an unexpected error
    USAGE = 2  # a bad option value, date, or booking file
    UNKNOWN_WORKFLOW = 3  # no booking workflow with that id
    CLOSED = 4  # the booking is already completed, cancelled or terminated
    REFUSED = 5  # the workflow refused the action (its verdict says why)
    NO_SERVER = 6  # no Temporal server reachable at the address tried
    WORKER_DOWN = 7  # no worker polls the task queue: nothing would happen
    EXISTS = 8  # `book`: that booking already exists
    INTERRUPTED = 130  # Ctrl-C


class CliError(Exception):
    """A foreseeable failure with the one line the operator reads and its exit code."""

    def __init__(self, message: str, code: Exit) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


DEBUG = {"on": False}


def say_error(message: str) -> None:
    """One line: newlines in a server's message are folded so the line stays one."""
    line = " ".join(message.split())
    print(f"error: {line}", file=sys.stderr, flush=True)


def guarded(func: F) -> F:
    """Runs a command, turning every foreseeable failure into one stderr line and its code."""

    @functools.wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except BaseException as exc:  # noqa: BLE001 - each kind is classified below
            if DEBUG["on"]:
                raise
            failure = classify(exc)
            if failure is None:
                raise
            say_error(failure.message)
            raise typer.Exit(int(failure.code)) from None

    return run  # type: ignore[return-value]


def classify(exc: BaseException) -> CliError | None:
    """The CLI's error for an exception, or None for a bug (which keeps its traceback)."""
    if isinstance(exc, CliError):
        return exc
    if isinstance(exc, KeyboardInterrupt):
        return CliError("interrupted", Exit.INTERRUPTED)
    if isinstance(exc, ValidationError):
        return CliError(describe_validation_error(exc), Exit.USAGE)
    if isinstance(exc, WorkflowUpdateRPCTimeoutOrCancelledError):
        return CliError(
            "the workflow did not answer in time: is a worker running? "
            "(`charters worker`, or `charters dev --status` for the local stack)",
            Exit.WORKER_DOWN,
        )
    if isinstance(exc, WorkflowQueryFailedError):
        return CliError(f"the workflow could not answer: {exc}", Exit.FAILED)
    if isinstance(exc, RPCError):
        if exc.status == RPCStatusCode.NOT_FOUND:
            return CliError(f"not found: {exc.message}", Exit.UNKNOWN_WORKFLOW)
        if exc.status == RPCStatusCode.UNAVAILABLE:
            return CliError(f"Temporal unavailable: {exc.message}", Exit.NO_SERVER)
        if exc.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
            return CliError(
                "the workflow did not answer in time: is a worker running? "
                "(`charters worker`, or `charters dev --status` for the local stack)",
                Exit.WORKER_DOWN,
            )
        return CliError(f"Temporal refused: {exc.message}", Exit.FAILED)
    if isinstance(exc, RuntimeError) and "Failed client connect" in str(exc):
        return CliError(f"no Temporal server reachable: {exc}", Exit.NO_SERVER)
    return None


def run_async(settings: Settings, coro_fn: Callable[[Client], Any]) -> Any:
    """Connects (one clear line when nothing answers) and runs `coro_fn(client)`."""
    from charters.temporal_client import connect

    async def go() -> Any:
        try:
            client = await connect(settings)
        except OSError as exc:  # a TLS file named in the settings cannot be read
            raise CliError(f"cannot read {exc.filename}: {exc.strerror}", Exit.USAGE) from exc
        except RuntimeError as exc:
            if "Failed client connect" not in str(exc):  # a settings problem, said plainly
                raise CliError(str(exc), Exit.USAGE) from exc
            raise CliError(
                f"no Temporal server reachable at {settings.temporal_address} "
                f"(namespace {settings.temporal_namespace}); start one with `charters dev` "
                "or set CHARTERS_TEMPORAL_ADDRESS",
                Exit.NO_SERVER,
            ) from exc
        return await coro_fn(client)

    return asyncio.run(go())


async def open_workflow(client: Client, workflow_id: str, *, running: bool) -> Any:
    """The workflow's description; unknown ids, and closed ones when `running`, fail clearly."""
    try:
        described = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise CliError(
                f"no booking workflow {workflow_id!r} (see `charters list`)",
                Exit.UNKNOWN_WORKFLOW,
            ) from None
        raise
    if running and described.status != WorkflowExecutionStatus.RUNNING:
        state = described.status.name.lower() if described.status else "closed"
        raise CliError(f"booking {workflow_id} is already {state}: nothing to change", Exit.CLOSED)
    return described


POLLER_FRESH = timedelta(seconds=90)
"""A live worker long-polls for up to a minute; the server lists a poller for minutes after
it died (its poller history), so only one seen within this window counts."""


async def require_worker(client: Client, settings: Settings) -> None:
    """Refuses to wait on a workflow no worker serves: an update would hang until its timeout."""
    answer = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=settings.temporal_namespace,
            task_queue=TaskQueue(name=settings.task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    now = datetime.now(UTC)
    live = [
        p
        for p in answer.pollers
        if not p.HasField("last_access_time")
        or now - p.last_access_time.ToDatetime(tzinfo=UTC) < POLLER_FRESH
    ]
    if not live:
        raise CliError(
            f"no worker polls task queue {settings.task_queue!r} on {settings.temporal_address}: "
            "start one with `charters worker` (or `charters dev` for the local stack)",
            Exit.WORKER_DOWN,
        )


def verdict_exit(verdict: Verdict) -> Exit:
    """A recorded action exits 0; a refusal on a closed or unknown booking has its own code."""
    from charters import contract

    if verdict.recorded:
        return Exit.OK
    return {
        contract.REFUSED_UNKNOWN_BOOKING: Exit.UNKNOWN_WORKFLOW,
        contract.REFUSED_CLOSED: Exit.CLOSED,
    }.get(verdict.code, Exit.REFUSED)


def exit_now(code: int) -> None:
    """Exit without interpreter finalization (see `cli.main`), output flushed first."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
