"""The booking's clocks up to departure and after it: crew reminders, the confirmation deadline,
the guest's reminders, the crew's day-of email, departure and the end of the trip. Every send a
clock starts is an errand: a clock never waits for another clock's send. Owns `state.clocks`."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from functools import partial

from temporalio import workflow

from charters import contract
from charters.contract import Stage
from charters.models import BookingOptions, BookingState, CrewAnswer
from charters.workflows.bookkeeping import Bookkeeping
from charters.workflows.bounces import CrewBounces
from charters.workflows.crew import CrewWaits
from charters.workflows.errands import Errands
from charters.workflows.publishing import Publishing
from charters.workflows.steps import StepRunner


class Clocks:
    def __init__(
        self,
        state: BookingState,
        steps: StepRunner,
        book: Bookkeeping,
        options: BookingOptions,
        crew: CrewWaits,
        bounces: CrewBounces,
        publishing: Publishing,
        errands: Errands,
    ) -> None:
        self._state = state
        self._clocks = state.clocks
        self._steps = steps
        self._book = book
        self._options = options
        self._crew = crew
        self._bounces = bounces
        self._publishing = publishing
        self._errands = errands

    @property
    def _began(self) -> datetime:
        """When this round began: a clock whose time had passed by then is not owed (no 72 h
        reminder for a booking made 30 h ahead, none for a date that was moved)."""
        return self._clocks.asked_at or self._state.validated.starts_at_utc

    def start_round(self) -> None:
        self._clocks.asked_at = workflow.now()

    def run_due(self, now: datetime) -> datetime:
        """Start every send that is due (each as its own errand) and return when the next clock
        falls due (departure at the latest)."""
        wakes = [self._state.validated.starts_at_utc]
        self._crew.send_reminders(now)
        self._bounces.send_due(now)
        for due in (self._crew.next_reminder(now), self._bounces.next_due(now)):
            if due is not None:
                wakes.append(due)
        if self._crew.deadline_due():
            if self._crew.deadline() <= now:
                self._crew.escalate_deadline()
            else:
                wakes.append(self._crew.deadline())
        for hours, at, key in self._guest_reminders():
            if key in self._state.clocks.guest_emails:
                continue
            if at <= now:
                self._errands.start(key, partial(self._remind_guest, key, hours))
            else:
                wakes.append(at)
        day_of = self._state.validated.starts_at_utc - timedelta(
            hours=self._options.crew_day_of_hours_before
        )
        if day_of >= self._began:
            if day_of <= now:
                self._crew.send_day_of()
            else:
                wakes.append(day_of)
        self._show_guest_reminders()
        return min(wakes)

    def _guest_reminders(self) -> list[tuple[float, datetime, str]]:
        starts = self._state.validated.starts_at_utc
        owed = []
        for hours in self._options.guest_reminder_hours_before:
            at = starts - timedelta(hours=hours)
            if at >= self._began:
                owed.append((hours, at, f"guest-reminder:{self._state.round}:{hours:g}"))
        return owed

    async def _remind_guest(self, key: str, hours: float) -> None:
        await self._publishing.email_guest("guest_reminders", key, "reminder", hours_before=hours)
        self._show_guest_reminders()

    def _show_guest_reminders(self) -> None:
        """`done` once every reminder owed for this date has gone, not after the first."""
        owed = self._guest_reminders()
        sent = [key for _, _, key in owed if key in self._clocks.guest_emails]
        if self._state.status.steps.get("guest_reminders") in ("blocked", "skipped"):
            return
        if owed and len(sent) == len(owed):
            self._book.step("guest_reminders", "done")
        elif sent or any(self._errands.running(key) for _, _, key in owed):
            self._book.step("guest_reminders", "running")

    def history_is_long(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= self._options.history_event_limit
        )

    # ---- departure and the end of the trip --------------------------------------------------

    def depart(self, pending: list[CrewAnswer]) -> None:
        """The boat leaves whoever has answered: an unfilled seat is reported, never waited on."""
        self._state.departed = True
        if pending:
            names = ", ".join(answer.name for answer in pending)
            self._book.block(
                contract.BLOCKED_CREW_UNFILLED,
                f"departed with unconfirmed seats: {names}",
                "nothing to run: record who sailed in the calendar",
            )
            self._steps.alert(
                f"unfilled:{self._state.round}",
                f"{self._state.status.booking_ref}: departed with unconfirmed crew",
                f"At departure these seats were still unconfirmed: {names}.",
            )
            self._book.step("confirmations", "skipped")
        for step, state in self._state.status.steps.items():
            if state in ("running", "blocked") and step not in ("album", "thank_you"):
                self._book.step(step, "skipped")
        for block in list(self._state.status.blocks):
            if block.on != contract.BLOCKED_CREW_UNFILLED:
                self._book.unblock(block.on)
        self._book.set_stage(Stage.UNDER_WAY)

    async def wait_until_after_trip(self) -> None:
        booking = self._state.validated
        ends = booking.starts_at_utc + timedelta(hours=float(booking.duration_hours))
        thank_at = ends + timedelta(hours=self._options.thank_you_hours_after_end)
        delay = thank_at - workflow.now()
        if delay > timedelta(0):
            await workflow.sleep(delay)


class Alarm:
    """One timer for the main loop's next wake, kept while that time stays the same: a signal or
    an update that changes no clock costs no cancelled and restarted timer."""

    def __init__(self) -> None:
        self._at: datetime | None = None
        self._timer: asyncio.Task[None] | None = None

    def set(self, at: datetime, now: datetime) -> None:
        if self._timer is not None and not self._timer.done() and self._at == at:
            return
        self.stop()
        self._at = at
        self._timer = asyncio.ensure_future(workflow.sleep(max(at - now, timedelta(seconds=1))))

    def rang(self) -> bool:
        return self._timer is not None and self._timer.done()

    def stop(self) -> None:
        if self._timer is not None and not self._timer.done():
            self._timer.cancel()
        self._timer = None
        self._at = None
