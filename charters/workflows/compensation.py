"""Undoing a booking that is cancelled. It runs shielded (a second cancel cannot cut it short)
after every other step has been cancelled and has settled, and finds each effect by its key:
the calendar entry and SCC event by their idempotency keys, the crew to tell by the email
ledger's record of their invitations. So an effect whose result never reached the workflow is
still undone. Each compensation once (`effects.compensated`, carried through continue-as-new).
Owns `effects.compensated`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from charters.contract import Activity, Stage
from charters.models import (
    Booking,
    BookingOptions,
    BookingState,
    CalendarCancelRequest,
    CompensationResult,
    SccCancelRequest,
)
from charters.workflows.bookkeeping import Bookkeeping
from charters.workflows.crew import CrewWaits
from charters.workflows.provisioning import calendar_key, scc_key
from charters.workflows.publishing import Publishing
from charters.workflows.steps import StepRunner
from charters.workflows.texts import Texts
from charters.workflows.together import together

GUEST_CANCELLED_KEY = "guest-cancelled"


class Compensation:
    def __init__(
        self,
        state: BookingState,
        steps: StepRunner,
        book: Bookkeeping,
        options: BookingOptions,
        workflow_id: str,
        crew: CrewWaits,
        publishing: Publishing,
        texts: Texts,
    ) -> None:
        self._state = state
        self._effects = state.effects
        self._steps = steps
        self._book = book
        self._options = options
        self._workflow_id = workflow_id
        self._crew = crew
        self._publishing = publishing
        self._texts = texts

    async def run(self) -> None:
        """The owner's systems and the guest page side by side, then the people: every crew
        member who was asked, and the guest, told once."""
        self._steps.compensating = True
        self._book.set_stage(Stage.CANCELLING)
        booking = self._state.booking
        if booking is not None:
            attempted = self._effects.attempted
            undo = []
            if "calendar" in attempted:
                undo.append(self._once("calendar", self._cancel_calendar))
            if "scc_event" in attempted:
                undo.append(self._once("scc_event", lambda: self._cancel_scc(booking)))
            if "guest_page" in attempted:
                undo.append(
                    self._once("guest_page", lambda: self._publishing.publish(cancelled=True))
                )
            await together(*undo)
            await together(
                self._once("notify_crew", self._tell_crew),
                self._once("guest", self._tell_guest),
            )
        for step, state in self._state.status.steps.items():
            if state in ("pending", "running", "blocked"):
                self._book.step(step, "cancelled")
        for block in list(self._state.status.blocks):
            self._book.unblock(block.on)
        self._state.status.outcome = "cancelled"
        self._book.set_stage(Stage.CANCELLED)

    async def _once(self, effect: str, undo: Callable[[], Awaitable[None]]) -> None:
        if effect in self._effects.compensated:
            return
        await undo()
        self._effects.compensated.append(effect)
        if effect in self._state.status.steps:
            self._book.step(effect, "compensated")

    async def _cancel_calendar(self) -> None:
        request = CalendarCancelRequest(
            idempotency_key=calendar_key(self._workflow_id),
            booking_ref=self._state.status.booking_ref,
            entry_id=self._effects.calendar_id,
        )
        await self._steps.run(
            "calendar_cancel",
            Activity.CANCEL_CALENDAR_ENTRY,
            request,
            CompensationResult,
            block_on="calendar-cancel",
        )

    async def _cancel_scc(self, booking: Booking) -> None:
        request = SccCancelRequest(
            idempotency_key=scc_key(self._workflow_id),
            event_id=self._effects.event_id,
            charter=booking.crew_view(self._state.guest_page_url),
        )
        await self._steps.run(
            "scc_cancel",
            Activity.CANCEL_SCC_EVENT,
            request,
            CompensationResult,
            block_on="scc-cancel",
        )

    async def _tell_crew(self) -> None:
        """Each member asked is emailed, and texted when they were texted an invitation."""
        notices = self._crew.cancellation_notices()
        await together(
            *(
                self._crew.send(email, step="notify_crew", only_if_sent=keys)
                for email, keys in notices
            ),
            *(
                self._texts.notice(email.key, email.role, email.member, "cancelled", "notify_crew")
                for email, _ in notices
            ),
        )

    async def _tell_guest(self) -> None:
        await self._publishing.email_guest("guest_cancelled", GUEST_CANCELLED_KEY, "cancelled")
