"""CharterBookingWorkflow: one booking, its whole life, from validation to the thank-you after
the trip.

    validate → provision (calendar ‖ SCC key + event) → publish (redact ‖ guest page +
    invalidation) → ask the crew → until departure: answers, reminders, deadline, replacements,
    reschedules, bounces; all confirmed → captain's summary ‖ calendar confirmed; guest reminders
    72 h and 24 h before; crew day-of reminder → departure → after the trip: photo album and the
    guest's thank-you → completed.

A cancel (update, signal or a native cancel from the Web UI) compensates at any stage before
departure, each compensation once. A step that fails for good blocks and waits for a person
(`steps.py`). History stays bounded: long waits poll inside an activity's retry policy, and the
booking continues as new at a quiet point once its history grows long.

Deterministic: time from `workflow.now()`, waiting from `workflow.wait_condition`. Idempotency
keys are the workflow id plus the step (never the run id), so continue-as-new, a reset or a re-run
of the same booking finds what was done before."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    FailureError,
    is_cancelled_exception,
)

with workflow.unsafe.imports_passed_through():
    from charters import contract, errors
    from charters.activities.calendar import CalendarActivities
    from charters.activities.email import EmailActivities
    from charters.activities.scc import SccActivities
    from charters.activities.scc_lambda import SccLambdaActivities
    from charters.activities.scc_store import SccStoreActivities
    from charters.activities.validation import validate_booking
    from charters.models import (
        Booking,
        BookingResult,
        BookingState,
        BookingStatus,
        CalendarEntryRequest,
        CalendarStatusRequest,
        CancelBooking,
        CaptainSummaryRequest,
        CharterBookingInput,
        EmailSent,
        RedactionRequest,
        SccEventRequest,
    )
    from charters.workflows.bookkeeping import Bookkeeping
    from charters.workflows.compensation import Compensation
    from charters.workflows.crew import CrewWaits
    from charters.workflows.handlers import BookingHandlers
    from charters.workflows.lifecycle import Lifecycle
    from charters.workflows.publishing import Publishing
    from charters.workflows.steps import BookingCancelled, StepRunner

STEPS = [
    "validate",
    "calendar",
    "scc_key",
    "scc_event",
    "redact",
    "guest_page",
    "invalidate",
    "notify_crew",
    "confirmations",
    "captain_summary",
    "calendar_confirmed",
    "guest_reminders",
    "crew_day_of",
    "album",
    "thank_you",
]

SCC_KEY_FIX = (
    "set SERVICE_KEY_HASH to sha256 of the key in Secrets Manager (`charters ops "
    "fix-scc-key-hash`), or let the worker do it: `charters approve-repair {workflow_id}`"
)


@workflow.defn(name=contract.WORKFLOW_NAME)
class CharterBookingWorkflow(BookingHandlers):
    @workflow.init
    def __init__(self, inp: CharterBookingInput) -> None:
        self._wf_id = workflow.info().workflow_id
        self._o = inp.options
        self._s = inp.state or BookingState(
            status=BookingStatus(
                workflow_id=self._wf_id,
                booking_ref=str(inp.booking.get("booking_ref", "")),
                stage="received",
                steps=dict.fromkeys(STEPS, "pending"),
                crew=[],
                guest_page_url=inp.options.guest_page_url,
            )
        )
        self._book = Bookkeeping(self._s)
        self._steps = StepRunner(self._s, self._book, self._o, self._wf_id)
        self._crew = CrewWaits(self._steps)
        self._publishing = Publishing(self._steps)
        self._life = Lifecycle(self._steps, self._crew)
        self._compensation = Compensation(self._steps, self._crew, self._publishing)
        self._changes = 0
        if inp.state is not None:
            self._book.restore()

    # ---- the business process, top to bottom ---------------------------------------------

    @workflow.run
    async def run(self, inp: CharterBookingInput) -> BookingResult:
        try:
            if not self._s.setup_done:
                await self._validate(inp)
                await self._provision()
                await self._publish()
                await self._ask_crew()
            await self._until_departure(inp)
            await self._after_trip()
        except BookingCancelled:
            await self._compensation.run()
        except BaseException as err:
            if not is_cancelled_exception(err):
                raise
            # A native cancel (Web UI, `temporal workflow cancel`), met in whatever the run was
            # awaiting: compensate exactly like `charters cancel`, then end CANCELED, which is
            # what the operator asked of Temporal.
            if not self._s.departed:
                self._s.cancel = self._s.cancel or CancelBooking(reason="cancelled in Temporal")
                await self._compensation.run()
            raise
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._result()

    async def _validate(self, inp: CharterBookingInput) -> None:
        self._book.set_stage("validating")
        self._book.step("validate", "running")
        try:
            booking = await workflow.execute_local_activity(
                validate_booking,
                inp.booking,
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=RetryPolicy(maximum_attempts=3),
            )
        except FailureError as err:  # a local activity's failure arrives as its cause itself
            if is_cancelled_exception(err):
                raise
            cause = err.cause if isinstance(err, ActivityError) and err.cause else err
            self._book.step("validate", "failed")
            self._s.status.error = str(cause)
            self._book.set_stage("failed")
            kind = cause.type if isinstance(cause, ApplicationError) else None
            raise ApplicationError(
                self._s.status.error, type=kind or "StepFailed", non_retryable=True
            ) from err
        self._book.step("validate", "done")
        self._s.booking = booking
        self._s.status.charter = booking.crew_view(self._o.guest_page_url)
        self._book.restore_date(booking)
        self._crew.seat(booking)
        for early in self._s.early:
            self.crew_confirmation(early)
        self._s.early.clear()

    async def _provision(self) -> None:
        """The calendar entry and the SCC event are independent: they run side by side."""
        self._book.set_stage("provisioning")
        await asyncio.gather(self._create_calendar_entry(), self._create_scc_event())
        self._check_cancelled()

    async def _create_calendar_entry(self) -> None:
        request = CalendarEntryRequest(
            idempotency_key=f"{self._wf_id}:calendar", booking=self._booking
        )
        ref = await self._steps.run(
            "calendar",
            lambda: self._steps.activity(CalendarActivities.create_calendar_entry, request),
        )
        assert ref is not None
        self._s.calendar_id = ref.entry_id

    async def _create_scc_event(self) -> None:
        """The seeds' incident: SCC refuses every call while SERVICE_KEY_HASH is wrong. The key is
        checked first; the event is created once SCC can accept it."""
        request = SccEventRequest(
            idempotency_key=f"{self._wf_id}:scc",
            charter=self._booking.crew_view(self._o.guest_page_url),
        )
        rejected = False
        while True:
            await self._scc_key_ready(rejected)
            try:
                ref = await self._steps.run(
                    "scc_event",
                    lambda: self._steps.activity(
                        SccActivities.create_scc_event,
                        request,
                        non_retryable=[errors.SCC_AUTH_REJECTED],
                        # no idempotency key: look-up before create is safe only one attempt
                        # at a time (README, "Short steps run local-first")
                        local=False,
                    ),
                    passthrough=[errors.SCC_AUTH_REJECTED],
                )
            except ActivityError:
                rejected = True
                continue
            assert ref is not None
            self._s.event_id = ref.event_id
            return

    async def _scc_key_ready(self, rejected: bool) -> None:
        """Blocked on the SCC key: `await_scc_service_key` retries on its own policy (no history
        per poll, so a block of any length costs the same few events) until someone fixes the
        Lambda, or an operator approves the repair, or the booking is cancelled."""
        check = await self._steps.run(
            "scc_key", lambda: self._steps.activity(SccLambdaActivities.check_scc_service_key)
        )
        assert check is not None
        if check.ok and not rejected:
            return
        reason = "rejected by SCC" if check.ok else check.reason
        self._book.step("scc_key", "blocked")
        self._book.block(
            contract.BLOCKED_SCC_KEY_HASH,
            f"SCC rejects our service key: SERVICE_KEY_HASH on the SCC Lambda is {reason}",
            SCC_KEY_FIX.format(workflow_id=self._wf_id),
        )
        await self._steps.alert(
            f"scc-key:{reason}",
            f"{self._s.status.booking_ref}: SCC service key hash {reason}",
            f"SERVICE_KEY_HASH on the SCC Lambda is {reason}. Fix: "
            + SCC_KEY_FIX.format(workflow_id=self._wf_id),
        )
        await self._life.wait_for_scc_key(force_repair=rejected and check.ok)
        self._book.unblock(contract.BLOCKED_SCC_KEY_HASH)
        self._book.step("scc_key", "done")

    async def _publish(self) -> None:
        """The SCC item is cleaned while the guest page goes out: neither needs the other, and
        the crew hear of the charter only after both."""
        self._book.set_stage("publishing")
        request = RedactionRequest(
            event_id=self._s.event_id or "", amounts=self._booking.financials().amounts()
        )
        redact = self._steps.run(
            "redact",
            lambda: self._steps.activity(SccStoreActivities.redact_scc_revenue, request),
        )
        await asyncio.gather(redact, self._publishing.publish())
        self._check_cancelled()

    async def _ask_crew(self) -> None:
        self._book.set_stage("notifying")
        self._book.step("notify_crew", "running")
        self._s.asked_at = workflow.now()
        await self._crew.invite_all("invite")
        self._book.step("notify_crew", "done")
        self._book.step("confirmations", "running")
        self._s.setup_done = True
        self._book.set_stage("awaiting-crew")
        self._check_cancelled()

    async def _until_departure(self, inp: CharterBookingInput) -> None:
        """People's changes, the crew's answers and every clock up to departure."""
        while True:
            seen = self._changes  # anything that arrives from here on wakes the wait below
            self._check_cancelled()
            await self._apply_changes()
            await self._crew.alert_declines()
            self._crew.show_waiting()
            if self._crew.pending():
                if self._book.stage in ("confirmed", "finalizing"):
                    self._book.set_stage("awaiting-crew")
            elif self._s.finalized != self._crew_key():
                await self._finalize()
                continue
            self._book.publish()
            now = workflow.now()
            if now >= self._booking.starts_at_utc:
                break
            wake = await self._life.run_due_clocks(now)
            if wake is None:
                continue  # something was due and done: look again
            if self._life.history_is_long():
                await workflow.wait_condition(workflow.all_handlers_finished)
                if not self._has_changes():
                    self._s.runs += 1
                    workflow.continue_as_new(inp.model_copy(update={"state": self._s}))
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda seen=seen: self._changes != seen,  # type: ignore[misc]
                    timeout=max(wake - now, timedelta(seconds=1)),
                )
        await self._life.depart(self._crew.pending())

    async def _finalize(self) -> None:
        """Everyone accepted: the captain's summary and the calendar's confirmation, side by
        side; again if the crew changes later."""
        self._book.set_stage("finalizing")
        self._book.step("confirmations", "done")
        self._book.unblock(contract.BLOCKED_CREW_DEADLINE)
        key = self._crew_key()
        summary_request = CaptainSummaryRequest(
            idempotency_key=f"{self._wf_id}:captain-summary:{key}",
            booking=self._booking,
            charter=self._booking.crew_view(self._o.guest_page_url),
            confirmations=self._crew.current(),
        )
        confirm_request = CalendarStatusRequest(
            entry_id=self._s.calendar_id or "", status="confirmed", booking=self._booking
        )
        summary: EmailSent | None
        summary, _ = await asyncio.gather(
            self._steps.run(
                "captain_summary",
                lambda: self._steps.activity(EmailActivities.send_captain_summary, summary_request),
                skippable="the captain then has no summary email; send it by hand",
            ),
            self._steps.run(
                "calendar_confirmed",
                lambda: self._steps.activity(
                    CalendarActivities.update_calendar_entry, confirm_request
                ),
            ),
        )
        if summary is not None:
            self._s.summary_id = summary.message_id
        self._s.finalized = key
        self._book.set_stage("confirmed")

    async def _after_trip(self) -> None:
        """After the trip: the album from the guests' uploads, the thank-you, and done."""
        await self._life.wait_until_after_trip()
        self._book.set_stage("post-trip")
        album_url = await self._publishing.publish_album()
        self._s.album_url = album_url
        await self._life.email_guest("thank_you", "thank-you", "thank-you", album_url=album_url)
        self._book.unblock(contract.BLOCKED_CREW_UNFILLED)
        self._s.status.outcome = "completed"
        self._book.set_stage("completed")

    # ---- changes people asked for, applied in the loop -------------------------------------

    async def _apply_changes(self) -> None:
        while self._s.bounces:
            await self._crew.bounced(self._s.bounces.pop(0))
        while self._s.reschedules:
            await self._life.reschedule(self._s.reschedules.pop(0), self._publishing)
        while self._s.assignments:
            await self._crew.assign(self._s.assignments[0])
            self._s.assignments.pop(0)
            held, self._s.early = self._s.early, []
            for answer in held:
                self.crew_confirmation(answer)

    def _has_changes(self) -> bool:
        s = self._s
        return bool(s.bounces or s.reschedules or s.assignments or s.cancel)

    def _check_cancelled(self) -> None:
        if self._s.cancel is not None:
            raise BookingCancelled()

    def _crew_key(self) -> str:
        return f"{self._s.round}:{self._s.crew_version}"

    @property
    def _booking(self) -> Booking:
        assert self._s.booking is not None
        return self._s.booking

    @workflow.query(name=contract.QUERY_RESULT)
    def result(self) -> BookingResult:
        """What the booking has made so far (its final result once it is over)."""
        return self._result()

    def _result(self) -> BookingResult:
        outcome = self._s.status.outcome or "confirmed"
        return BookingResult(
            workflow_id=self._wf_id,
            booking_ref=self._s.status.booking_ref,
            outcome=outcome,
            calendar_entry_id=self._s.calendar_id,
            scc_event_id=self._s.event_id,
            guest_page_url=self._o.guest_page_url,
            guest_page_key=self._s.page.key if self._s.page else "",
            invalidation_ids=list(self._s.invalidations),
            crew_email_ids=dict(self._s.emails),
            captain_summary_email_id=self._s.summary_id,
            confirmations=self._crew.current(),
            guest_email_ids=dict(self._s.guest_emails),
            album_url=self._s.album_url,
            compensated=list(self._s.compensated),
        )
