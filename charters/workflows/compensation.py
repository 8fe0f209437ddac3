"""Undoing a booking that is cancelled: each compensation exactly once (recorded in
`state.compensated`, so a retry, a block or continue-as-new never repeats one), in the order a
guest and crew would want to learn of it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from temporalio import workflow

from charters.models import CalendarStatusRequest, SccUpdateRequest
from charters.workflows.crew import CrewWaits
from charters.workflows.publishing import Publishing
from charters.workflows.steps import Part, StepRunner

with workflow.unsafe.imports_passed_through():
    from charters.activities.calendar import CalendarActivities
    from charters.activities.scc import SccActivities


class Compensation(Part):
    def __init__(self, steps: StepRunner, crew: CrewWaits, publishing: Publishing) -> None:
        super().__init__(steps)
        self._crew = crew
        self._publishing = publishing

    async def run(self) -> None:
        """Calendar, SCC, the guest page replaced by a cancellation notice, crew told. A step
        that fails for good blocks like any other (a cancel cannot be cancelled)."""
        self._steps.compensating = True
        self._book.set_stage("cancelling")
        booking = self._s.booking
        if booking is not None:
            if self._s.calendar_id:
                await self._once("calendar", self._cancel_calendar)
            if self._s.event_id:
                await self._once("scc_event", self._cancel_scc)
            if self._s.page is not None:
                await self._once("guest_page", self._publishing.publish_cancellation)
            if self._s.notified:
                await self._once("notify_crew", self._tell_crew)
        for step, state in self._s.status.steps.items():
            if state in ("pending", "running", "blocked"):
                self._book.step(step, "cancelled")
        for block in list(self._s.status.blocks):
            self._book.unblock(block.on)
        self._s.status.outcome = "cancelled"
        self._book.set_stage("cancelled")

    async def _once(self, step: str, undo: Callable[[], Awaitable[None]]) -> None:
        if step in self._s.compensated:
            return
        await undo()
        self._s.compensated.append(step)
        self._book.step(step, "compensated")

    async def _cancel_calendar(self) -> None:
        request = CalendarStatusRequest(entry_id=self._s.calendar_id or "", status="cancelled")
        await self._steps.run(
            "calendar_cancel",
            lambda: self._steps.activity(CalendarActivities.update_calendar_entry, request),
            block_on="calendar",
        )

    async def _cancel_scc(self) -> None:
        booking = self._s.booking
        assert booking is not None
        request = SccUpdateRequest(
            event_id=self._s.event_id or "",
            status="cancelled",
            charter=booking.crew_view(self._s.status.guest_page_url or ""),
        )
        await self._steps.run(
            "scc_cancel",
            lambda: self._steps.activity(SccActivities.update_scc_event, request),
            block_on="scc-event",
        )

    async def _tell_crew(self) -> None:
        booking = self._s.booking
        assert booking is not None
        told = [(r, m) for r, m in booking.members if m.id in self._s.notified]
        for role, member in told:
            await self._crew.email(role, member, "cancelled")
