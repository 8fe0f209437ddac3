"""The booking's records in the owner's systems: the JADA calendar entry and the crew event in
ShipCaptainCrew, with the seeds' incident (SCC refusing every call while SERVICE_KEY_HASH is
wrong) handled as a block that resumes once someone fixes the Lambda. Owns
`effects.calendar_id` and `effects.event_id`."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

from charters import contract, errors
from charters.contract import Activity
from charters.models import (
    BookingOptions,
    BookingState,
    CalendarEntryRef,
    CalendarEntryRequest,
    CalendarStatusRequest,
    RedactionRequest,
    RedactionResult,
    SccEventRef,
    SccEventRequest,
    SccKeyCheck,
    SccUpdateRequest,
)
from charters.workflows.bookkeeping import Bookkeeping
from charters.workflows.failures import StepFailure
from charters.workflows.steps import StepRunner
from charters.workflows.together import settle

SCC_KEY_FIX = (
    "set SERVICE_KEY_HASH to sha256 of the key in Secrets Manager (`charters ops "
    "fix-scc-key-hash`), or let the worker do it: `charters approve-repair {workflow_id}`"
)


def calendar_key(workflow_id: str) -> str:
    return f"{workflow_id}:calendar"


def scc_key(workflow_id: str) -> str:
    return f"{workflow_id}:scc"


# Creates are regular activities. The calendar entry and the SCC event, the effects compensation
# must undo, are created by regular activities: a cancel is then taken at once while a create is
# in flight, and compensation waits for it. As local activities a cancel waited for the workflow
# task's heartbeat, by when a slow create's attempt could have given up while its request still
# landed after compensation had looked for it.


class Provisioning:
    def __init__(
        self,
        state: BookingState,
        steps: StepRunner,
        book: Bookkeeping,
        options: BookingOptions,
        workflow_id: str,
    ) -> None:
        self._state = state
        self._effects = state.effects
        self._steps = steps
        self._book = book
        self._options = options
        self._workflow_id = workflow_id

    def _attempt(self, effect: str) -> None:
        """Noted before the activity is scheduled: compensation then looks for the effect by
        its key even if the result never comes back."""
        if effect not in self._effects.attempted:
            self._effects.attempted.append(effect)

    async def create_calendar_entry(self) -> None:
        request = CalendarEntryRequest(
            idempotency_key=calendar_key(self._workflow_id), booking=self._state.validated
        )
        self._attempt("calendar")
        ref = await self._steps.run(
            "calendar",
            Activity.CREATE_CALENDAR_ENTRY,
            request,
            CalendarEntryRef,
            local=False,  # see "Creates are regular activities" above
        )
        assert ref is not None
        self._effects.calendar_id = ref.entry_id

    async def update_scc_event(self, skippable: str | None = None) -> None:
        """The SCC event rewritten whole from the booking as it is now: its date, its crew, its
        page link (the body is absolute, so a repeat writes the same)."""
        event_id = self._effects.event_id
        if not event_id:
            return
        update = SccUpdateRequest(
            event_id=event_id,
            status="scheduled" if self._state.round == 1 else "rescheduled",
            charter=self._state.validated.crew_view(self._state.guest_page_url),
        )
        await self._steps.run("scc_event", Activity.UPDATE_SCC_EVENT, update, skippable=skippable)

    async def confirm_calendar_entry(self) -> None:
        request = CalendarStatusRequest(
            entry_id=self._effects.calendar_id or "",
            status="confirmed",
            booking=self._state.validated,
        )
        await self._steps.run(
            "calendar_confirmed", Activity.UPDATE_CALENDAR_ENTRY, request, block_on="calendar"
        )

    async def create_scc_event(self) -> None:
        """The key is checked first; the event is created once SCC can accept it. SCC rejecting
        the key at create (the hash changed since the check) goes back to the key's block."""
        request = SccEventRequest(
            idempotency_key=scc_key(self._workflow_id),
            charter=self._state.validated.crew_view(self._state.guest_page_url),
        )
        rejected = False
        while True:
            await self._scc_key_ready(rejected)
            self._attempt("scc_event")
            self._book.step("scc_event", "running")
            try:
                ref = await self._steps.call(
                    Activity.CREATE_SCC_EVENT,
                    request,
                    SccEventRef,
                    non_retryable=[errors.SCC_AUTH_REJECTED],
                    local=False,  # see "Creates are regular activities" above
                )
            except StepFailure as failure:
                if failure.error_type == errors.SCC_AUTH_REJECTED:
                    rejected = True
                    continue
                action = await self._steps.block("scc_event", "scc-event", failure)
                if action == "skip":  # pragma: no cover - the block is not skippable
                    return
                continue
            self._book.step("scc_event", "done")
            self._effects.event_id = ref.event_id
            return

    async def _scc_key_ready(self, rejected: bool) -> None:
        check = await self._steps.run("scc_key", Activity.CHECK_SCC_SERVICE_KEY, None, SccKeyCheck)
        assert check is not None
        if check.ok and not rejected:
            return
        reason = "rejected by SCC" if check.ok else check.reason
        fix = SCC_KEY_FIX.format(workflow_id=self._workflow_id)
        count = self._state.block_counts.get(contract.BLOCKED_SCC_KEY_HASH, 0) + 1
        self._state.block_counts[contract.BLOCKED_SCC_KEY_HASH] = count
        self._book.step("scc_key", "blocked")
        self._book.block(
            contract.BLOCKED_SCC_KEY_HASH,
            f"SCC rejects our service key: SERVICE_KEY_HASH on the SCC Lambda is {reason}",
            fix,
        )
        self._steps.alert(
            f"scc-key:{reason}:{count}",
            f"{self._state.status.booking_ref}: SCC service key hash {reason}",
            f"SERVICE_KEY_HASH on the SCC Lambda is {reason}. Fix: {fix}",
        )
        await self._wait_for_scc_key(force_repair=rejected and check.ok)
        self._book.unblock(contract.BLOCKED_SCC_KEY_HASH)
        self._book.step("scc_key", "done")

    async def _wait_for_scc_key(self, force_repair: bool) -> None:
        """Polls inside one activity's retry policy (no history per poll, so a block of any
        length costs the same few events) until the hash is right; an approved repair runs at
        once. A cancel ends the wait like any other await."""
        while True:
            if not force_repair:
                poll = asyncio.ensure_future(self._poll_scc_key())
                asked = asyncio.ensure_future(
                    workflow.wait_condition(lambda: self._state.requests.repair_requested)
                )
                try:
                    await workflow.wait([poll, asked], return_when=asyncio.FIRST_COMPLETED)
                finally:
                    await settle([task for task in (poll, asked) if not task.done()])
                if poll.done() and not poll.cancelled():
                    poll.result()
                    return
            else:
                await workflow.wait_condition(lambda: self._state.requests.repair_requested)
            self._state.requests.repair_requested = False
            force_repair = False
            await self._steps.run(
                "scc_key",
                Activity.REPAIR_SCC_SERVICE_KEY_HASH,
                None,
                SccKeyCheck,
                block_on="scc-key-repair",
                timeout=120,
                heartbeat=30,
            )
            return

    async def _poll_scc_key(self) -> None:
        """The wait for someone to fix the hash; a wait that ends in a permanent error blocks
        for a person like any step (never fails the booking)."""
        while True:
            try:
                await self._steps.call(
                    Activity.AWAIT_SCC_SERVICE_KEY,
                    None,
                    SccKeyCheck,
                    local=False,
                    budget=timedelta(days=3650),
                    retry=RetryPolicy(
                        initial_interval=timedelta(seconds=self._options.scc_retry_initial_seconds),
                        backoff_coefficient=2.0,
                        maximum_interval=timedelta(
                            seconds=self._options.scc_retry_max_interval_seconds
                        ),
                    ),
                )
            except StepFailure as failure:
                await self._steps.block("scc_key", "scc-key-wait", failure)
                continue
            return

    async def redact_revenue(self) -> None:
        request = RedactionRequest(
            event_id=self._effects.event_id or "",
            amounts=self._state.validated.financials().amounts(),
        )
        await self._steps.run("redact", Activity.REDACT_SCC_REVENUE, request, RedactionResult)
