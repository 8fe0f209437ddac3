"""The booking's clocks and its changes of date: reminders to the crew and the guest, the
deadline, departure and the end of the trip, a reschedule applied all or nothing, the long wait on
the SCC key, and when to continue as new."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import ValidationError
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, CancelledError

from charters import contract
from charters.models import (
    Booking,
    CalendarStatusRequest,
    CrewAnswer,
    GuestEmailKind,
    GuestEmailRequest,
    Reschedule,
    SccKeyCheck,
    SccUpdateRequest,
    describe_validation_error,
)
from charters.workflows.crew import CrewWaits, refuse
from charters.workflows.steps import SUMMARIES, BookingCancelled, Part, StepRunner, describe

with workflow.unsafe.imports_passed_through():
    from charters.activities.calendar import CalendarActivities
    from charters.activities.email import EmailActivities
    from charters.activities.scc import SccActivities
    from charters.activities.scc_lambda import SccLambdaActivities

if TYPE_CHECKING:
    from charters.workflows.publishing import Publishing

Clock = tuple[datetime, Callable[[], Awaitable[None]]]


class Lifecycle(Part):
    def __init__(self, steps: StepRunner, crew: CrewWaits) -> None:
        super().__init__(steps)
        self._crew = crew

    @property
    def _booking(self) -> Booking:
        assert self._s.booking is not None
        return self._s.booking

    # ---- clocks until departure -----------------------------------------------------------

    def _clocks(self) -> list[Clock]:
        """Everything that falls due before departure, for the current date and crew. A clock
        whose time had passed before this round began is not owed (no 72 h reminder for a
        booking made 30 h ahead, none for a date that was moved)."""
        starts = self._booking.starts_at_utc
        began = self._s.asked_at or starts
        clocks: list[Clock] = []
        if self._crew.pending():
            reminder = self._crew.next_reminder(began)
            if reminder is not None:
                clocks.append((reminder, lambda: self._crew.remind_due(began)))
            if self._s.escalated_round != self._s.round:
                clocks.append((self._crew.deadline(), self._crew.escalate_deadline))
        for hours in self._o.guest_reminder_hours_before:
            at = starts - timedelta(hours=hours)
            key = f"guest-reminder:{self._s.round}:{hours:g}"
            if at >= began and key not in self._s.done:
                clocks.append((at, self._guest_reminder(key, hours)))
        day_of = starts - timedelta(hours=self._o.crew_day_of_hours_before)
        key = f"day-of:{self._s.round}:{self._s.crew_version}"
        if day_of >= began and key not in self._s.done:
            clocks.append((day_of, self._crew_day_of(key)))
        return clocks

    async def run_due_clocks(self, now: datetime) -> datetime | None:
        """Runs what is due and returns None, or returns when to wake up next (departure at the
        latest)."""
        clocks = self._clocks()
        due = [run for at, run in clocks if at <= now]
        for run in due:
            await run()
        if due:
            return None
        return min([at for at, _ in clocks] + [self._booking.starts_at_utc])

    def _guest_reminder(self, key: str, hours: float) -> Callable[[], Awaitable[None]]:
        async def send() -> None:
            self._s.done.append(key)
            await self.email_guest("guest_reminders", key, "reminder", hours_before=hours)

        return send

    async def email_guest(
        self,
        step: str,
        key: str,
        kind: GuestEmailKind,
        hours_before: float | None = None,
        album_url: str | None = None,
    ) -> None:
        booking = self._booking
        request = GuestEmailRequest(
            idempotency_key=f"{self._wf_id}:{key}",
            guest_email=booking.guest.email,
            charter=booking.crew_view(self._o.guest_page_url),
            kind=kind,
            hours_before=hours_before,
            album_url=album_url,
        )
        sent = await self._steps.run(
            step,
            lambda: self._steps.activity(EmailActivities.send_guest_email, request),
            block_on="guest-email",
            skippable=f"the guest then gets no {kind} email",
        )
        if sent is not None:
            self._s.guest_emails[key] = sent.message_id

    def _crew_day_of(self, key: str) -> Callable[[], Awaitable[None]]:
        async def send() -> None:
            self._s.done.append(key)
            self._book.step("crew_day_of", "running")
            await asyncio.gather(
                *(self._crew.email(r, m, "day-of") for r, m in self._crew.accepted())
            )
            self._book.step("crew_day_of", "done")

        return send

    def history_is_long(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= self._o.history_event_limit
        )

    # ---- departure and the end of the trip --------------------------------------------------

    async def depart(self, pending: list[CrewAnswer]) -> None:
        """The boat leaves whoever has answered: an unfilled seat is reported, never waited on."""
        self._s.departed = True
        if pending:
            names = ", ".join(a.name for a in pending)
            self._book.block(
                contract.BLOCKED_CREW_UNFILLED,
                f"departed with unconfirmed seats: {names}",
                "nothing to run: record who sailed in the calendar",
            )
            await self._steps.alert(
                f"unfilled:{self._s.round}",
                f"{self._s.status.booking_ref}: departed with unconfirmed crew",
                f"At departure these seats were still unconfirmed: {names}.",
            )
            self._book.step("confirmations", "skipped")
        for block in list(self._s.status.blocks):
            if block.on != contract.BLOCKED_CREW_UNFILLED:
                self._book.unblock(block.on)
        self._book.set_stage("under-way")

    async def wait_until_after_trip(self) -> None:
        booking = self._booking
        ends = booking.starts_at_utc + timedelta(hours=float(booking.duration_hours))
        thank_at = ends + timedelta(hours=self._o.thank_you_hours_after_end)
        delay = thank_at - workflow.now()
        if delay > timedelta(0):
            await workflow.sleep(delay)

    # ---- a change of date -------------------------------------------------------------------

    def check_reschedule(self, change: Reschedule) -> Booking:
        """The validator's half: the new date must make a valid booking in the future."""
        raw = self._booking.model_dump(mode="json")
        raw.update(starts_at=change.starts_at.isoformat(), slug=self._booking.page_slug)
        if change.duration_hours is not None:
            raw["duration_hours"] = str(change.duration_hours)
        try:
            return Booking.model_validate(raw, context={"now": workflow.now()})
        except ValidationError as exc:
            raise refuse(
                contract.REFUSED_INVALID, f"reschedule refused: {describe_validation_error(exc)}"
            ) from None

    async def reschedule(self, change: Reschedule, publishing: Publishing) -> None:
        """All or nothing at the calendar: if the owner's calendar refuses the new date the
        booking keeps its date, links and answers, and operations are told. Once the calendar
        has it, SCC, the guest page and the crew follow (each blocking, not failing, on a
        permanent error)."""
        moved = self.check_reschedule(change)
        request = CalendarStatusRequest(
            entry_id=self._s.calendar_id or "", status="tentative", booking=moved
        )
        try:
            await self._steps.activity(CalendarActivities.update_calendar_entry, request)
        except ActivityError as err:
            if isinstance(err.cause, CancelledError):
                raise
            cause, _ = describe(err)
            text = (
                f"reschedule to {change.starts_at:%Y-%m-%d %H:%M} refused by the calendar "
                f"({cause}); the booking keeps {self._booking.starts_at:%Y-%m-%d %H:%M}"
            )
            self._s.status.error = text
            self._book.note(text)
            await self._steps.alert(
                f"reschedule-refused:{len(self._s.status.notes)}:{change.starts_at.isoformat()}",
                f"{self._s.status.booking_ref}: reschedule refused",
                text,
            )
            return
        self._commit(moved)
        self._stop_if_cancelled()
        view = moved.crew_view(self._o.guest_page_url)
        if self._s.event_id:
            update = SccUpdateRequest(event_id=self._s.event_id, status="rescheduled", charter=view)
            await self._steps.run(
                "scc_event",
                lambda: self._steps.activity(SccActivities.update_scc_event, update),
            )
        self._stop_if_cancelled()
        await publishing.publish()
        self._stop_if_cancelled()
        await self._crew.invite_all("rescheduled")
        self._book.set_stage("awaiting-crew")

    def _stop_if_cancelled(self) -> None:
        """A cancel that arrives mid-reschedule is not kept waiting for the crew's emails."""
        if self._s.cancel is not None:
            raise BookingCancelled()

    def _commit(self, moved: Booking) -> None:
        self._s.booking = moved
        self._s.status.error = None
        self._s.round += 1
        self._s.status.round = self._s.round
        self._s.status.charter = moved.crew_view(self._o.guest_page_url)
        self._s.asked_at = workflow.now()
        self._s.invited_at.clear()
        for answer in self._s.answers.values():
            if answer.answer != "replaced":
                answer.answer, answer.by, answer.reminders_sent = "pending", None, 0
        self._book.unblock(contract.BLOCKED_CREW_DEADLINE)
        self._book.step("confirmations", "running")
        self._book.note(f"rescheduled to {moved.starts_at:%Y-%m-%d %H:%M} (round {self._s.round})")

    # ---- the SCC key --------------------------------------------------------------------------

    async def wait_for_scc_key(self, force_repair: bool) -> None:
        """Polls inside one activity's retry policy until the hash is right; an approved repair
        runs at once. Cancellation ends the wait."""
        while True:
            if not force_repair:
                poll: workflow.ActivityHandle[SccKeyCheck] = workflow.start_activity_method(
                    SccLambdaActivities.await_scc_service_key,
                    start_to_close_timeout=timedelta(seconds=self._o.activity_timeout_seconds),
                    summary=SUMMARIES["await_scc_service_key"],
                    retry_policy=RetryPolicy(
                        initial_interval=timedelta(seconds=self._o.scc_retry_initial_seconds),
                        backoff_coefficient=2.0,
                        maximum_interval=timedelta(seconds=self._o.scc_retry_max_interval_seconds),
                    ),
                )
                asked = asyncio.ensure_future(
                    workflow.wait_condition(
                        lambda: self._s.repair_requested or self._s.cancel is not None
                    )
                )
                await workflow.wait([poll, asked], return_when=asyncio.FIRST_COMPLETED)
                if poll.done():
                    asked.cancel()
                    poll.result()
                    return
                poll.cancel()
                with contextlib.suppress(ActivityError, asyncio.CancelledError):
                    await poll
            else:
                await workflow.wait_condition(
                    lambda: self._s.repair_requested or self._s.cancel is not None
                )
            if self._s.cancel is not None:
                raise BookingCancelled()
            self._s.repair_requested = False
            force_repair = False
            await self._steps.run(
                "scc_key",
                lambda: self._steps.activity(
                    SccLambdaActivities.repair_scc_service_key_hash, timeout=120, heartbeat=30
                ),
                block_on="scc-key-repair",
            )
