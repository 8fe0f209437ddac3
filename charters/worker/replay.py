"""Replaying a booking's history with the workflow code as deployed, in the full sandbox: how
chaos and `charters ops repair` tell whether a booking's history still replays, and if not, from
which event. A history that does not replay is a booking whose next workflow task fails on every
worker that has not kept it in its cache."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.worker import Replayer

from charters.worker.runner import workflow_runner
from charters.workflows.charter_booking import CharterBookingWorkflow

FAILING_EVENT = re.compile(r"HistoryEvent\(id: (\d+)")
"""How the SDK's core names the event a replay could not match in its nondeterminism errors."""


class HistoryReplay:
    """One replayer for many histories, one at a time (a replayer runs one history per call)."""

    def __init__(self, data_converter: DataConverter) -> None:
        self._replayer = Replayer(
            workflows=[CharterBookingWorkflow],
            data_converter=data_converter,
            debug_mode=True,
            workflow_runner=workflow_runner("sandboxed"),
        )
        self._one_at_a_time = asyncio.Lock()

    async def failure(self, history: WorkflowHistory) -> str | None:
        """Why the history does not replay (one line, at most 600 characters), or None."""
        async with self._one_at_a_time:
            replayed = await self._replayer.replay_workflow(history, raise_on_replay_failure=False)
        failure = replayed.replay_failure
        if failure is None:
            return None
        return " ".join(f"{type(failure).__name__}: {failure}".split())[:600]


@dataclass(frozen=True)
class ReplayBreak:
    """Where a history stops replaying, and the point a reset keeps everything before."""

    failure: str
    event_id: int
    reset_to: int
    """The last workflow task completion before `event_id`: a reset there keeps every event up
    to that task and drops the commands the code no longer reproduces."""


def replay_break(history: WorkflowHistory, failure: str) -> ReplayBreak | None:
    """The break a replay failure names, or None when it names no event of this history."""
    named = FAILING_EVENT.search(failure)
    if named is None:
        return None
    event_id = int(named.group(1))
    completions = [
        event.event_id
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
        and event.event_id < event_id
    ]
    if not completions:
        return None
    return ReplayBreak(failure=failure, event_id=event_id, reset_to=completions[-1])
