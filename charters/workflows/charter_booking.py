"""CharterBookingWorkflow: one booking, its whole life, from validation to the thank-you after
the trip.

    validate → provision (calendar ‖ SCC key + event) → publish (redact ‖ guest page +
    invalidation) → ask the crew → until departure: answers, reminders, deadline, replacements
    (the page and the SCC event follow), reschedules, bounces; all confirmed → captain's
    summary ‖ calendar confirmed; guest reminders 72 h and 24 h before; crew day-of reminder →
    departure → after the trip: photo album and the guest's thank-you → completed.

The concurrency model (docs/workflow.md has the long form):

- The business process runs as one task. Side-by-side steps run as a group (`together`): when
  one branch ends abnormally, or the process is cancelled, every other branch is cancelled and
  awaited before anything else runs.
- Every activity is cancelled with WAIT_CANCELLATION_COMPLETED: a cancelled step's outcome is
  known (an effect it made is recorded) before compensation starts.
- A cancel (by update, by signal, or natively from the Web UI) is one request in state: it
  cancels the process task, which sees it at whatever it awaits, and the cancel point after
  every activity. Compensation then runs shielded and finds every effect by its idempotency
  key, so an effect whose result never reached the workflow is still undone. A native cancel
  ends CANCELED, `charters cancel` ends COMPLETED with outcome `cancelled`.
- Sends that hang off a clock or a seat (invitations, reminders, guest emails, the day-of
  email, the captain's summary, alerts) are errands, one task per key beside the main loop: a
  send that blocks for a person holds only its own seat or email, never the clocks.
- Handlers record what people asked and never wait for the main loop; the loop continues as new
  only at a quiet point (no errand running, no handler running, nothing queued).

Deterministic: time from `workflow.now()`, waiting from `workflow.wait_condition` and
`workflow.wait`. Idempotency keys are the workflow id plus the step (never the run id), so
continue-as-new, a reset or a re-run of the same booking finds what was done before."""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from charters import contract
from charters.contract import Activity, Stage
from charters.models import (
    Booking,
    BookingResult,
    BookingState,
    BookingStatus,
    CancelBooking,
    CharterBookingInput,
)
from charters.workflows.bookkeeping import STEPS, Bookkeeping
from charters.workflows.bounces import CrewBounces
from charters.workflows.branding import BrandMoves
from charters.workflows.clocks import Alarm, Clocks
from charters.workflows.compensation import Compensation
from charters.workflows.crew import CrewWaits
from charters.workflows.errands import Errands
from charters.workflows.failures import StepFailure
from charters.workflows.finalizing import Finalizing
from charters.workflows.handlers import BookingHandlers
from charters.workflows.provisioning import Provisioning
from charters.workflows.publishing import Publishing
from charters.workflows.rescheduling import Rescheduling
from charters.workflows.seat_changes import SeatChanges
from charters.workflows.steps import StepRunner
from charters.workflows.texts import Texts
from charters.workflows.together import shielded, together


@workflow.defn(name=contract.WORKFLOW_NAME)
class CharterBookingWorkflow(BookingHandlers):
    @workflow.init
    def __init__(self, booking_input: CharterBookingInput) -> None:
        self._workflow_id = workflow.info().workflow_id
        options = self._options = booking_input.options
        self._state = booking_input.state or BookingState(
            status=BookingStatus(
                workflow_id=self._workflow_id,
                booking_ref=str(booking_input.booking.get("booking_ref", "")),
                stage=Stage.RECEIVED,
                steps=dict.fromkeys(STEPS, "pending"),
                crew=[],
                guest_page_url=options.guest_page_url,
            )
        )
        state, workflow_id = self._state, self._workflow_id
        if not state.guest_page_url:  # the first run (or one continued before moves existed)
            state.guest_page_url = options.guest_page_url
        self._changes = 0
        self._process: asyncio.Task[None] | None = None
        self._errands = Errands(self._changed)
        self._alerts = Errands(self._changed)
        self._book = Bookkeeping(state)
        self._steps = StepRunner(
            state, self._book, options, workflow_id, self._alerts, self._changed
        )
        self._texts = Texts(state, self._steps, self._book, workflow_id, self._errands)
        self._crew = CrewWaits(
            state, self._steps, self._book, options, workflow_id, self._errands, self._texts
        )
        self._bounces = CrewBounces(
            state, self._steps, self._book, options, workflow_id, self._errands, self._crew
        )
        self._publishing = Publishing(state, self._steps, options, workflow_id)
        self._provisioning = Provisioning(state, self._steps, self._book, options, workflow_id)
        self._finalizing = Finalizing(
            state,
            self._steps,
            self._book,
            workflow_id,
            self._crew,
            self._provisioning,
            self._errands,
        )
        self._seat_changes = SeatChanges(
            state,
            self._steps,
            self._book,
            self._provisioning,
            self._publishing,
            self._crew,
            self._texts,
            self._errands,
        )
        self._moves = BrandMoves(
            state,
            self._steps,
            self._book,
            workflow_id,
            self._publishing,
            self._provisioning,
            self._errands,
        )
        self._clocks = Clocks(
            state,
            self._steps,
            self._book,
            options,
            self._crew,
            self._bounces,
            self._publishing,
            self._errands,
        )
        self._alarm = Alarm()
        self._rescheduling = Rescheduling(
            state,
            self._steps,
            self._book,
            options,
            self._crew,
            self._clocks,
            self._publishing,
            self._provisioning,
            self._errands,
        )
        self._compensation = Compensation(
            state,
            self._steps,
            self._book,
            options,
            workflow_id,
            self._crew,
            self._publishing,
            self._texts,
        )
        if booking_input.state is not None:
            self._book.restore()

    # ---- the run: the process, and compensation when it is cancelled --------------------------

    @workflow.run
    async def run(self, booking_input: CharterBookingInput) -> BookingResult:
        self._process = asyncio.ensure_future(self._live(booking_input))
        native = False
        while not self._process.done():
            try:
                await workflow.wait([self._process])
            except asyncio.CancelledError:
                native = True  # Web UI or `temporal workflow cancel`: the run itself was cancelled
                self._request_cancel(CancelBooking(reason="cancelled in Temporal"))
        try:
            self._process.result()
        except asyncio.CancelledError:
            await self._errands.cancel()
            if self._state.departed:
                self._end_after_departure()
            else:
                try:
                    await shielded(self._compensation.run())
                except asyncio.CancelledError:
                    native = True
        except ApplicationError:
            await self._errands.cancel()
            raise
        await self._alerts.wait_idle()
        await workflow.wait_condition(workflow.all_handlers_finished)
        if native:
            raise asyncio.CancelledError("cancelled in Temporal")
        return self._result()

    def _end_after_departure(self) -> None:
        """A native cancel after the boat sailed: nothing to undo, and what was left (the album,
        the thank-you) will not happen; the status says so rather than `under-way`."""
        for step, state in self._state.status.steps.items():
            if state in ("pending", "running", "blocked"):
                self._book.step(step, "cancelled")
        self._book.note(
            "cancelled in Temporal after departure: nothing undone, no album or thank-you"
        )
        self._state.status.outcome = "cancelled"
        self._book.set_stage(Stage.CANCELLED)

    def _request_cancel(self, cancel: CancelBooking) -> None:
        """The one way a booking is cancelled: the request is kept in state and the process is
        cancelled, seeing it at its next await. After departure nothing is undone."""
        if self._state.requests.cancel is None and not self._state.departed:
            self._state.requests.cancel = cancel
        if self._process is not None and not self._process.done():
            self._process.cancel()
        self._changed()

    def _changed(self) -> None:
        self._changes += 1

    # ---- the business process, top to bottom ------------------------------------------------

    async def _live(self, booking_input: CharterBookingInput) -> None:
        self._steps.cancel_point()
        if not self._state.setup_done:
            await self._validate(booking_input)
            self._book.set_stage(Stage.PROVISIONING)
            await together(
                self._provisioning.create_calendar_entry(),
                self._provisioning.create_scc_event(),
            )
            self._book.set_stage(Stage.PUBLISHING)
            await together(self._provisioning.redact_revenue(), self._publishing.publish())
            self._book.set_stage(Stage.NOTIFYING)
            self._book.step("notify_crew", "running")
            self._book.step("confirmations", "running")
            self._clocks.start_round()
            self._state.setup_done = True
        await self._until_departure(booking_input)
        await self._after_trip()

    async def _validate(self, booking_input: CharterBookingInput) -> None:
        self._book.set_stage(Stage.VALIDATING)
        self._book.step("validate", "running")
        try:
            booking = await self._steps.call(
                Activity.VALIDATE_BOOKING, booking_input.booking, Booking, timeout=10
            )
        except StepFailure as failure:
            # Bad input is the one failure no person can fix inside the booking: it fails, with
            # the field and the rule, and nothing has been made yet.
            self._book.step("validate", "failed")
            self._state.status.error = failure.message
            self._state.status.outcome = "failed"
            self._book.set_stage(Stage.FAILED)
            raise ApplicationError(
                failure.message, type=failure.error_type or "StepFailed", non_retryable=True
            ) from failure
        self._steps.cancel_point()
        self._book.step("validate", "done")
        self._state.booking = booking
        self._state.status.charter = booking.crew_view(self._state.guest_page_url)
        self._book.restore_date(booking)
        self._crew.seat(booking)
        held, self._state.crew.held = self._state.crew.held, []
        for answer in held:
            self.crew_confirmation(answer)

    async def _until_departure(self, booking_input: CharterBookingInput) -> None:
        """People's changes, the crew's answers and every clock up to departure."""
        while True:
            self._errands.raise_failure()
            if self._state.requests.reschedules:
                await self._rescheduling.apply(self._state.requests.reschedules.pop(0))
                continue
            if self._state.requests.moves:
                await self._moves.apply(self._state.requests.moves[0])
                self._state.requests.moves.pop(0)
                continue
            if self._seat_changes.stale:
                self._crew.send_invitations()  # the new member is asked at once, not after
                await self._seat_changes.refresh()
                continue
            self._moves.tell_guest()
            self._keep_crew_up()
            now = workflow.now()
            if now >= self._state.validated.starts_at_utc:
                break
            wake = self._clocks.run_due(now)
            self._book.publish()
            if self._clocks.history_is_long() and self._quiet():
                await workflow.wait_condition(workflow.all_handlers_finished)
                if self._quiet():
                    workflow.continue_as_new(
                        booking_input.model_copy(update={"state": self._state})
                    )
            if self._alarm.rang():
                self._alarm.stop()  # what it woke the loop for has just run
            if not self._local_steps_running():
                self._alarm.set(wake, now)
            seen = self._changes

            def woken(seen: int = seen) -> bool:
                return self._changes != seen or self._alarm.rang()

            try:
                await workflow.wait_condition(woken)
            except asyncio.CancelledError:
                self._alarm.stop()
                raise
        self._alarm.stop()
        await self._errands.cancel()
        self._clocks.depart(self._crew.pending())

    def _keep_crew_up(self) -> None:
        """Invitations owed go out, declines and waits are shown, and once everyone has
        accepted the summary and the calendar's confirmation follow (again if the crew
        changes later)."""
        crew = self._crew
        crew.send_invitations()
        self._seat_changes.send_releases()
        if not crew.invitations():
            self._book.step("notify_crew", "done")
        crew.show_declines()
        crew.show_waiting()
        stage = self._book.stage
        if crew.pending():
            self._book.step("confirmations", "running")
            if stage in (Stage.FINALIZING, Stage.CONFIRMED) or (
                stage == Stage.NOTIFYING and crew.invitations_settled()
            ):
                self._book.set_stage(Stage.AWAITING_CREW)
        elif self._finalizing.owed():
            self._finalizing.start()

    def _local_steps_running(self) -> bool:
        """A local activity is running, or an errand is about to start one. The loop then waits
        for it without a timer: a timer started while local activities complete across workflow
        tasks makes a history the SDK replays differently (the replay gate caught it); a local
        step ends within seconds and wakes the loop, which then sets its timer."""
        return bool(self._steps.local_in_flight or self._errands.starting or self._alerts.starting)

    def _quiet(self) -> bool:
        return not (
            self._errands.running()
            or self._alerts.running()
            or self._state.requests.reschedules
            or self._state.requests.moves
            or self._seat_changes.stale
            or self._state.requests.cancel
        )

    async def _after_trip(self) -> None:
        """After the trip: the album from the guests' uploads, the thank-you, and done."""
        await self._clocks.wait_until_after_trip()
        self._book.set_stage(Stage.POST_TRIP)
        album_url = await self._publishing.publish_album()
        await self._publishing.email_guest(
            "thank_you", "thank-you", "thank-you", album_url=album_url
        )
        self._book.unblock(contract.BLOCKED_CREW_UNFILLED)
        self._state.status.outcome = "completed"
        self._book.set_stage(Stage.COMPLETED)

    # ---- what it has made -------------------------------------------------------------------

    @workflow.query(name=contract.QUERY_RESULT)
    def result(self) -> BookingResult:
        """What the booking has made so far (its final result once it is over)."""
        return self._result()

    def _result(self) -> BookingResult:
        outcome = self._state.status.outcome
        effects = self._state.effects
        return BookingResult(
            workflow_id=self._workflow_id,
            booking_ref=self._state.status.booking_ref,
            outcome=outcome if outcome in ("completed", "cancelled") else "confirmed",
            calendar_entry_id=effects.calendar_id,
            scc_event_id=effects.event_id,
            guest_page_url=self._state.guest_page_url,
            guest_page_key=effects.page.key if effects.page else "",
            invalidation_ids=list(effects.invalidations),
            crew_email_ids=dict(self._state.crew.emails),
            captain_summary_email_id=effects.summary_id,
            confirmations=self._crew.current(),
            guest_email_ids=dict(self._state.clocks.guest_emails),
            album_url=effects.album_url,
            compensated=list(effects.compensated),
        )
