"""The driver of a chaos run: starts bookings, plays their crew, waits for their results. Every
call to Temporal is retried while the server is down (it is killed during the run)."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from charters import contract
from charters.models import BookingResult, BookingStatus, CrewConfirmation
from charters.settings import Settings
from charters.starter.book import start_booking
from charters_dev.chaos_config import FINAL_STAGES, ChaosConfig, Tracked


def _failure_reason(err: WorkflowFailureError) -> str:
    cause = err.cause
    if isinstance(cause, ApplicationError):
        return f"{cause.type or 'ApplicationError'}: {cause.message}"
    return f"{type(cause).__name__}: {cause}" if cause else str(err)


class Driver:
    """Starts bookings, confirms their crew once each reaches awaiting-crew, collects results."""

    def __init__(self, client: Client, settings: Settings, config: ChaosConfig) -> None:
        self.client = client
        self.settings = settings
        self.config = config
        self.finished = 0
        self.started = 0
        self.errors: list[str] = []

    async def start(self, t: Tracked) -> None:
        """Retried for up to a minute (the server may be down); a start whose answer was lost
        shows as WorkflowAlreadyStarted on the next attempt, which counts as started."""
        for attempt in range(60):
            try:
                await start_booking(self.client, self.settings, t.booking)
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

    async def stage(self, handle: WorkflowHandle[Any, Any]) -> str | None:
        try:
            status = await handle.query(
                contract.QUERY_STATUS, result_type=BookingStatus, rpc_timeout=timedelta(seconds=5)
            )
        except Exception:  # noqa: BLE001 - the worker may be down: ask again
            return None
        return status.stage

    async def confirm_crew(self, t: Tracked, handle: WorkflowHandle[Any, Any]) -> None:
        """One signal per member (a failed RPC is retried; the ledger compares what arrived)."""
        for crew_id in t.members:
            while crew_id not in t.signalled:
                t.signal_attempts += 1
                try:
                    await handle.signal(
                        contract.SIGNAL_CREW_CONFIRMATION,
                        CrewConfirmation(crew_id=crew_id, decision="accept", by="chaos"),
                    )
                    t.signalled.add(crew_id)
                except RPCError as exc:
                    if exc.status == RPCStatusCode.NOT_FOUND:
                        return  # closed: nothing to confirm any more
                    self.errors.append(f"signal {t.workflow_id}: {exc}")
                    await asyncio.sleep(0.5)

    async def drive(self, t: Tracked, timeout: float) -> None:
        """Until the booking has a result or `timeout` passes; safe to call again later."""
        if not t.started or t.outcome is not None:
            return
        deadline = time.monotonic() + timeout
        handle = self.client.get_workflow_handle(t.workflow_id, result_type=BookingResult)
        while len(t.signalled) < len(t.members) and time.monotonic() < deadline:
            stage = await self.stage(handle)
            if stage == "awaiting-crew":
                await self.confirm_crew(t, handle)
                break
            if stage in FINAL_STAGES:
                break
            await asyncio.sleep(self.config.poll_seconds)
        while (left := deadline - time.monotonic()) > 0:
            try:
                result = await asyncio.wait_for(handle.result(), timeout=left)
                t.result, t.outcome = result, result.outcome
            except WorkflowFailureError as err:
                t.outcome, t.reason = "failed", _failure_reason(err)
            except TimeoutError:
                return
            except RPCError as exc:
                if exc.status == RPCStatusCode.NOT_FOUND:
                    return  # reported as lost
                self.errors.append(f"result {t.workflow_id}: {exc}")
                await asyncio.sleep(1)  # the server is down: ask again
                continue
            break
        if t.outcome is None:
            return
        self.finished += 1

    async def book(self, t: Tracked) -> None:
        await self.start(t)
        await self.drive(t, self.config.booking_timeout_seconds)
        if t.outcome is None:
            self.finished += 1  # its slot moves on; the booking is waited for at the end
