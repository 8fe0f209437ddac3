"""A change of date, all or nothing at the calendar: if the owner's calendar refuses the new date
the booking keeps its date, links and answers, and operations are told. Once the calendar has it,
SCC and the guest page follow side by side, and the crew are asked again for the new round. A
change that was valid when asked but is not by the time it is applied (the date has passed
meanwhile) is refused the same way: noted and alerted, never failing the booking."""

from __future__ import annotations

from pydantic import ValidationError
from temporalio import workflow
from temporalio.exceptions import ApplicationError

from charters import contract
from charters.contract import Activity, Stage
from charters.models import (
    Booking,
    BookingOptions,
    BookingState,
    CalendarStatusRequest,
    Reschedule,
    describe_validation_error,
)
from charters.workflows.bookkeeping import Bookkeeping
from charters.workflows.clocks import Clocks
from charters.workflows.crew import CrewWaits
from charters.workflows.errands import Errands
from charters.workflows.failures import StepFailure, refuse
from charters.workflows.provisioning import Provisioning
from charters.workflows.publishing import Publishing
from charters.workflows.steps import StepRunner
from charters.workflows.together import together


class Rescheduling:
    def __init__(
        self,
        state: BookingState,
        steps: StepRunner,
        book: Bookkeeping,
        options: BookingOptions,
        crew: CrewWaits,
        clocks: Clocks,
        publishing: Publishing,
        provisioning: Provisioning,
        errands: Errands,
    ) -> None:
        self._state = state
        self._steps = steps
        self._book = book
        self._options = options
        self._crew = crew
        self._clocks = clocks
        self._publishing = publishing
        self._provisioning = provisioning
        self._errands = errands

    def check(self, change: Reschedule) -> Booking:
        """The validator's half: the new date must make a valid booking in the future."""
        raw = self._state.validated.model_dump(mode="json")
        raw.update(starts_at=change.starts_at.isoformat(), slug=self._state.validated.page_slug)
        if change.duration_hours is not None:
            raw["duration_hours"] = str(change.duration_hours)
        try:
            return Booking.model_validate(raw, context={"now": workflow.now()})
        except ValidationError as exc:
            raise refuse(
                contract.REFUSED_INVALID, f"reschedule refused: {describe_validation_error(exc)}"
            ) from None

    async def apply(self, change: Reschedule) -> None:
        try:
            moved = self.check(change)
        except ApplicationError as refused:
            self._refused(change, refused.message)
            return
        # The old date's sends are moot: cancel them (and wait) before anything moves.
        await self._errands.cancel()
        request = CalendarStatusRequest(
            entry_id=self._state.effects.calendar_id or "", status="tentative", booking=moved
        )
        try:
            await self._steps.call(Activity.UPDATE_CALENDAR_ENTRY, request)
        except StepFailure as failure:
            self._refused(change, f"refused by the calendar ({failure.cause})")
            return
        self._commit(moved)
        await together(self._provisioning.update_scc_event(), self._publishing.publish())
        self._book.set_stage(Stage.AWAITING_CREW)

    def _refused(self, change: Reschedule, why: str) -> None:
        text = (
            f"reschedule to {change.starts_at:%Y-%m-%d %H:%M} {why.removeprefix('reschedule ')}; "
            f"the booking keeps {self._state.validated.starts_at:%Y-%m-%d %H:%M}"
        )
        self._state.status.error = text
        self._book.note(text)
        self._steps.alert(
            f"reschedule-refused:{len(self._state.status.notes)}:{change.starts_at.isoformat()}",
            f"{self._state.status.booking_ref}: reschedule refused",
            text,
        )

    def _commit(self, moved: Booking) -> None:
        self._state.booking = moved
        self._state.status.error = None
        self._state.round += 1
        self._state.status.round = self._state.round
        self._state.status.charter = moved.crew_view(self._state.guest_page_url)
        self._clocks.start_round()
        self._crew.new_round()
        self._book.unblock(contract.BLOCKED_CREW_DEADLINE)
        self._book.step("confirmations", "running")
        for step in ("captain_summary", "calendar_confirmed"):  # again, for the new date
            self._book.step(step, "pending")
        self._book.note(
            f"rescheduled to {moved.starts_at:%Y-%m-%d %H:%M} (round {self._state.round})"
        )
