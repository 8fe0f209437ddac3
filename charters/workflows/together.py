"""Structured concurrency for workflow code: a group of side-by-side steps that never leaves a
branch running, and a shield that lets a step finish whatever cancels its caller.

Both use `workflow.wait`, the SDK's deterministic `asyncio.wait`: waiting on a task through it
does not cancel the task when the waiter is cancelled, which is what lets the group cancel its
branches itself and then wait for them to settle."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine
from typing import Any, TypeVar

from temporalio import workflow

T = TypeVar("T")


async def together(*steps: Coroutine[Any, Any, Any]) -> list[Any]:
    """Run `steps` side by side and return their results in order. When one branch ends
    abnormally (an exception or a cancel), or the caller is cancelled, every other branch is
    cancelled and awaited before the first error is raised: nothing the group started is still
    running, or still about to record something, once it returns or raises."""
    tasks = [asyncio.ensure_future(step) for step in steps]
    try:
        while not all(task.done() for task in tasks):
            await workflow.wait(
                [task for task in tasks if not task.done()], return_when=asyncio.FIRST_COMPLETED
            )
            if any(_ended_abnormally(task) for task in tasks):
                break
    except asyncio.CancelledError:
        await settle(tasks)
        raise
    if any(_ended_abnormally(task) for task in tasks):
        await settle(tasks)
        first = next(task for task in tasks if _ended_abnormally(task))
        if first.cancelled():
            raise asyncio.CancelledError()
        error = first.exception()
        assert error is not None
        raise error
    return [task.result() for task in tasks]


async def settle(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancel `tasks` and wait until every one has finished. A cancel of the caller while
    waiting is held back until they have: a branch is never abandoned."""
    for task in tasks:
        if not task.done():
            task.cancel()
    interrupted = False
    while not all(task.done() for task in tasks):
        try:
            await workflow.wait([task for task in tasks if not task.done()])
        except asyncio.CancelledError:
            interrupted = True
    for task in tasks:
        if not task.cancelled():
            task.exception()  # retrieved: a branch's error is the group's, not a loose task's
    if interrupted:
        raise asyncio.CancelledError()


async def shielded(step: Awaitable[T]) -> T:
    """Run `step` to its end even if the caller is cancelled meanwhile (a second native cancel
    during compensation): the cancel is re-raised once the step is done."""
    task = asyncio.ensure_future(step)
    interrupted = False
    while not task.done():
        try:
            await workflow.wait([task])
        except asyncio.CancelledError:
            interrupted = True
    result = task.result()
    if interrupted:
        raise asyncio.CancelledError()
    return result


def _ended_abnormally(task: asyncio.Task[Any]) -> bool:
    return task.done() and (task.cancelled() or task.exception() is not None)
