"""The driver of a chaos run: starts bookings and plays their people (crew and operators, per
each booking's plan) until the booking is where its plan ends it: `confirmed` (the booking then
waits for its charter date, weeks away: the run does not wait for that) or `cancelled`. Every
call to Temporal is retried while the server is down (it is killed during the run)."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from charters import contract
from charters.actions import ask
from charters.models import BookingOptions, BookingResult, BookingStatus
from charters.settings import Settings
from charters.starter.book import booking_options, start_booking
from charters.starter.repair import repair, stuck_break
from charters_dev.chaos_config import ChaosConfig, Tracked
from charters_dev.chaos_operators import Operator

CLOSED_STAGES = contract.FINAL_STAGES


def _failure_reason(err: WorkflowFailureError) -> str:
    cause = err.cause
    if isinstance(cause, ApplicationError):
        return f"{cause.type or 'ApplicationError'}: {cause.message}"
    return f"{type(cause).__name__}: {cause}" if cause else str(err)


class Driver:
    def __init__(self, client: Client, settings: Settings, config: ChaosConfig) -> None:
        self.client = client
        self.settings = settings
        self.config = config
        self.operator = Operator(client, settings)
        self.finished = 0
        self.started = 0
        self.errors: list[str] = []

    def options(self, t: Tracked) -> BookingOptions:
        """A short retry budget per step: a permanent fault blocks the step within seconds
        (`BlockedOn`) instead of the production default's minutes."""
        return booking_options(self.settings, t.booking).model_copy(
            update={"step_retry_budget_seconds": self.config.step_budget_seconds}
        )

    async def start(self, t: Tracked) -> None:
        """Retried for up to a minute (the server may be down); a start whose answer was lost
        shows as WorkflowAlreadyStarted on the next attempt, which counts as started."""
        for attempt in range(60):
            try:
                await start_booking(self.client, self.settings, t.booking, self.options(t))
                t.started = True
                self.started += 1
                return
            except WorkflowAlreadyStartedError:
                if attempt == 0:
                    t.start_error = "a workflow with this id already existed"
                    return
                t.started = True  # an earlier attempt did start it; its answer was lost
                self.started += 1
                return
            except Exception as exc:  # noqa: BLE001 - retried: the server may be down
                t.start_error = f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(1)

    async def status(self, handle: WorkflowHandle[Any, Any]) -> BookingStatus | None:
        try:
            return await ask(handle, contract.QUERY_STATUS, BookingStatus, timedelta(seconds=5))
        except Exception:  # noqa: BLE001 - the server or the workers may be down: ask again
            return None

    async def drive(self, t: Tracked, timeout: float) -> None:
        """Until the booking is where its plan ends it, or `timeout` passes; safe to call again."""
        if not t.started or t.outcome is not None:
            return
        deadline = time.monotonic() + timeout
        handle = self.client.get_workflow_handle(t.workflow_id, result_type=BookingResult)
        while time.monotonic() < deadline:
            st = await self.status(handle)
            if st is None:
                if await self._closed_badly(t, handle):
                    break
                await self._repair_if_stuck(t)
                await asyncio.sleep(self.config.poll_seconds)
                continue
            t.last = st
            t.blocked_on.update(b.on for b in st.blocks)
            if st.blocked_on:
                t.blocked_on.add(st.blocked_on)
            try:
                await self.operator.step(t, st)
            except Exception as exc:  # noqa: BLE001 - retried on the next look
                self.errors.append(f"act {t.workflow_id}: {type(exc).__name__}: {exc}")
            if st.stage in CLOSED_STAGES or self.operator.done(t, st):
                t.final = st
                t.outcome = st.stage
                await self._result(t, handle)
                break
            await asyncio.sleep(self.config.poll_seconds)
        if t.outcome is not None:
            self.finished += 1

    async def _closed_badly(self, t: Tracked, handle: WorkflowHandle[Any, Any]) -> bool:
        """A workflow that failed or was terminated answers no query with a status we use."""
        try:
            described = await handle.describe()
        except RPCError as exc:
            return exc.status == RPCStatusCode.NOT_FOUND
        except Exception:  # noqa: BLE001 - down: ask again
            return False
        if described.status in (
            WorkflowExecutionStatus.FAILED,
            WorkflowExecutionStatus.TERMINATED,
            WorkflowExecutionStatus.TIMED_OUT,
        ):
            try:
                await handle.result()
            except WorkflowFailureError as err:
                t.outcome, t.reason = "failed", _failure_reason(err)
            return True
        return False

    async def _repair_if_stuck(self, t: Tracked) -> None:
        """What an operator does when `status` calls a booking stuck (its history no longer
        replays, so every worker fails its workflow task): `charters ops repair`."""
        try:
            found = await stuck_break(self.client, t.workflow_id)
            if found is not None:
                await repair(self.client, t.workflow_id)
                t.repairs.append(found.failure)
        except Exception as exc:  # noqa: BLE001 - the server may be down: look again later
            self.errors.append(f"repair {t.workflow_id}: {type(exc).__name__}: {exc}")

    async def _result(self, t: Tracked, handle: WorkflowHandle[Any, Any]) -> None:
        if t.outcome == "failed":
            await self._closed_badly(t, handle)
            return
        for _ in range(30):
            try:
                t.result = await ask(handle, contract.QUERY_RESULT, BookingResult)
                return
            except Exception as exc:  # noqa: BLE001 - down: ask again
                self.errors.append(f"result {t.workflow_id}: {type(exc).__name__}")
                await asyncio.sleep(1)

    async def book(self, t: Tracked) -> None:
        await self.start(t)
        await self.drive(t, self.config.booking_timeout_seconds)
        if t.outcome is None:
            self.finished += 1  # its slot moves on; the booking is waited for at the end
