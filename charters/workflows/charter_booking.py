"""CharterBookingWorkflow: one booking, from validation to every crew member confirmed.

Deterministic: time comes from `workflow.now()`, concurrency from `asyncio.gather` over
activities, waiting from `workflow.wait_condition`. Idempotency keys are the workflow id plus the
step (never the run id), so a reset or a re-run of the same booking finds what was done before."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from charters import contract, errors
    from charters.activities.calendar import CalendarActivities
    from charters.activities.cloudfront import CloudFrontActivities
    from charters.activities.email import EmailActivities
    from charters.activities.guest_page import GuestPageActivities
    from charters.activities.scc import SccActivities
    from charters.activities.scc_lambda import SccLambdaActivities
    from charters.activities.scc_store import SccStoreActivities
    from charters.activities.validation import validate_booking
    from charters.models import (
        ApproveSccKeyRepair,
        AssignCrew,
        Booking,
        BookingResult,
        BookingStatus,
        CalendarEntryRequest,
        CalendarStatusRequest,
        CancelBooking,
        CaptainSummaryRequest,
        CharterBookingInput,
        CrewAnswer,
        CrewConfirmation,
        CrewEmailRequest,
        CrewMember,
        CrewView,
        EmailKind,
        GuestPageRef,
        GuestPageRequest,
        InvalidationRequest,
        OperationsAlertRequest,
        RedactionRequest,
        Reschedule,
        Role,
        SccEventRequest,
        SccUpdateRequest,
        StepState,
    )

T = TypeVar("T")

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
]

# Reminders per member (capped, each on its own clock), deadline block cleared on confirmation,
# one decline alert per member and round, a replacement's confirmation kept when it arrives with
# the assignment. Histories from before it replay the old behaviour.
PATCH_CREW_WAITS = "crew-waits-v2"

# Validation as a local activity; the SCC clean-up beside the guest page and its invalidation;
# the captain's summary beside the calendar's confirmation. Shorter chain, same effects.
PATCH_PARALLEL_STEPS = "parallel-steps-v3"

SCC_KEY_FIX = (
    "SCC rejects our service key: SERVICE_KEY_HASH on the SCC Lambda is {reason}. "
    "Fix: set it to sha256 of the key in Secrets Manager (`charters ops fix-scc-key-hash`), "
    "or let the worker do it: `charters approve-repair {workflow_id}`."
)


SUMMARIES = {
    "validate_booking": "Validate the booking",
    "create_calendar_entry": "Create the JADA calendar entry",
    "update_calendar_entry": "Update the calendar entry's status",
    "check_scc_service_key": "Check SERVICE_KEY_HASH on the SCC Lambda",
    "repair_scc_service_key_hash": "Repair SERVICE_KEY_HASH (operator approved)",
    "create_scc_event": "Create the crew event in ShipCaptainCrew",
    "update_scc_event": "Update the SCC event",
    "redact_scc_revenue": "Remove revenue from the SCC item",
    "publish_guest_page": "Publish the guest page to S3",
    "invalidate_guest_page": "Invalidate the guest page in CloudFront",
    "send_crew_email": "Email a crew member",
    "alert_operations": "Alert operations",
    "send_captain_summary": "Send the captain's summary",
}


class BookingCancelled(Exception):
    """Raised inside the run to unwind to compensation."""


@workflow.defn(name=contract.WORKFLOW_NAME)
class CharterBookingWorkflow:
    @workflow.init
    def __init__(self, inp: CharterBookingInput) -> None:
        self._wf_id = workflow.info().workflow_id
        self._options = inp.options
        self._booking: Booking | None = None
        self._status = BookingStatus(
            workflow_id=self._wf_id,
            booking_ref=str(inp.booking.get("booking_ref", "")),
            stage="received",
            steps=dict.fromkeys(STEPS, "pending"),
            crew=[],
            guest_page_url=inp.options.guest_page_url,
        )
        self._answers: dict[str, CrewAnswer] = {}
        self._early: list[CrewConfirmation] = []
        self._assignments: list[AssignCrew] = []
        self._cancel: CancelBooking | None = None
        self._reschedule: Reschedule | None = None
        self._repair_requested = False
        self._changes = 0
        self._round = 1
        self._calendar_id: str | None = None
        self._event_id: str | None = None
        self._page: GuestPageRef | None = None
        self._invalidations: list[str] = []
        self._emails: dict[str, str] = {}
        self._notified: set[str] = set()
        self._invited_at: dict[str, datetime] = {}
        self._alerted: set[str] = set()
        self._v2 = False
        self._parallel = False

    # ---- the business process, top to bottom ---------------------------------------------

    @workflow.run
    async def run(self, inp: CharterBookingInput) -> BookingResult:
        try:
            self._parallel = workflow.patched(PATCH_PARALLEL_STEPS)
            booking = await self._validate(inp)
            await self._provision(booking)
            if self._parallel:
                await self._redact_and_publish(booking)
            else:
                await self._redact_revenue(booking)
                await self._publish_guest_page(booking)
            await self._notify_crew(booking, kind="invite")
            booking = await self._await_confirmations(booking)
            summary = await self._finalize(booking)
        except BookingCancelled:
            return await self._compensate()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._result("confirmed", summary)

    async def _validate(self, inp: CharterBookingInput) -> Booking:
        self._stage("validating")
        run = workflow.execute_local_activity if self._parallel else workflow.execute_activity
        booking = await self._step(
            "validate",
            lambda: run(
                validate_booking,
                inp.booking,
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=RetryPolicy(maximum_attempts=3),
            ),
        )
        self._booking = booking
        for role, member in booking.members:
            self._answers[member.id] = CrewAnswer(crew_id=member.id, name=member.name, role=role)
        for early in self._early:
            self._apply_confirmation(early)
        self._early.clear()
        self._status.charter = self._view(booking)
        return booking

    async def _provision(self, booking: Booking) -> None:
        """The calendar entry and the SCC event are independent: they run side by side."""
        self._stage("provisioning")
        await asyncio.gather(self._create_calendar_entry(booking), self._create_scc_event(booking))
        self._check_cancelled()

    async def _create_calendar_entry(self, booking: Booking) -> None:
        ref = await self._step(
            "calendar",
            lambda: self._activity(
                CalendarActivities.create_calendar_entry,
                CalendarEntryRequest(idempotency_key=f"{self._wf_id}:calendar", booking=booking),
            ),
        )
        self._calendar_id = ref.entry_id

    async def _create_scc_event(self, booking: Booking) -> None:
        """Blocked on the SCC service key: retry with backoff, visible as BlockedOn, until an
        operator fixes the Lambda or approves the repair (or cancels)."""
        delay = self._options.scc_retry_initial_seconds
        while True:
            self._step_state("scc_key", "running")
            check = await self._activity(SccLambdaActivities.check_scc_service_key)
            if check.ok:
                self._step_state("scc_key", "done")
                try:
                    ref = await self._step(
                        "scc_event",
                        lambda: self._activity(
                            SccActivities.create_scc_event,
                            SccEventRequest(
                                idempotency_key=f"{self._wf_id}:scc", charter=self._view(booking)
                            ),
                            non_retryable=[errors.SCC_AUTH_REJECTED],
                        ),
                    )
                    self._event_id = ref.event_id
                    self._unblock(contract.BLOCKED_SCC_KEY_HASH)
                    return
                except ActivityError as err:
                    if _error_type(err) != errors.SCC_AUTH_REJECTED:
                        raise self._failed("scc_event", err) from err
                    reason = "rejected by SCC"
            else:
                reason = check.reason
            self._step_state("scc_key", "retrying")
            self._block(
                contract.BLOCKED_SCC_KEY_HASH,
                SCC_KEY_FIX.format(reason=reason, workflow_id=self._wf_id),
            )
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._repair_requested or self._cancel is not None,
                    timeout=timedelta(seconds=delay),
                )
            delay = min(delay * 2, self._options.scc_retry_max_interval_seconds)
            if self._cancel is not None:
                return
            if self._repair_requested:
                self._repair_requested = False
                await self._activity(SccLambdaActivities.repair_scc_service_key_hash)

    async def _redact_and_publish(self, booking: Booking) -> None:
        """The SCC item is cleaned while the guest page goes out: neither needs the other, and
        the crew hear of the charter only after both."""
        self._stage("publishing")
        await asyncio.gather(self._redact(booking), self._publish(booking))
        self._check_cancelled()

    async def _redact_revenue(self, booking: Booking) -> None:
        self._stage("redacting")
        await self._redact(booking)
        self._check_cancelled()

    async def _redact(self, booking: Booking) -> None:
        assert self._event_id is not None
        await self._step(
            "redact",
            lambda: self._activity(
                SccStoreActivities.redact_scc_revenue,
                RedactionRequest(
                    event_id=self._event_id or "", amounts=booking.financials().amounts()
                ),
            ),
        )

    async def _publish_guest_page(self, booking: Booking, cancelled: bool = False) -> None:
        self._stage("publishing")
        await self._publish(booking, cancelled)
        if not cancelled:
            self._check_cancelled()

    async def _publish(self, booking: Booking, cancelled: bool = False) -> None:
        """Render and put the page, then invalidate CloudFront for that exact content."""
        page = await self._step(
            "guest_page",
            lambda: self._activity(
                GuestPageActivities.publish_guest_page,
                GuestPageRequest(
                    charter=self._view(booking), event_id=self._event_id, cancelled=cancelled
                ),
            ),
        )
        self._page = page
        invalidation = await self._step(
            "invalidate",
            lambda: self._activity(
                CloudFrontActivities.invalidate_guest_page,
                InvalidationRequest(
                    idempotency_key=self._wf_id,
                    slug=booking.page_slug,
                    content_sha256=page.content_sha256,
                ),
            ),
        )
        if invalidation.invalidation_id not in self._invalidations:
            self._invalidations.append(invalidation.invalidation_id)

    async def _notify_crew(
        self, booking: Booking, kind: EmailKind, only: list[str] | None = None
    ) -> None:
        """One email per crew member and captain, each its own retryable activity."""
        self._stage("notifying")
        members = [(r, m) for r, m in self._members(booking) if only is None or m.id in only]
        await self._step(
            "notify_crew",
            lambda: asyncio.gather(
                *(self._email_member(booking, role, member, kind) for role, member in members)
            ),
        )
        if kind != "cancelled":
            self._check_cancelled()

    async def _email_member(
        self, booking: Booking, role: Role, member: CrewMember, kind: EmailKind
    ) -> None:
        sent = await self._activity(
            EmailActivities.send_crew_email,
            CrewEmailRequest(
                idempotency_key=f"{self._wf_id}:{kind}:{self._round}:{member.id}",
                workflow_id=self._wf_id,
                member=member,
                role=role,
                charter=self._view(booking),
                kind=kind,
                round=self._round,
            ),
        )
        self._emails[f"{kind}:{self._round}:{member.id}"] = sent.message_id
        if kind != "cancelled":
            self._notified.add(member.id)

    async def _await_confirmations(self, booking: Booking) -> Booking:
        """Wait for every member to accept; reminders on timers, declines and the deadline alert
        operations, who may confirm on someone's behalf or assign a replacement."""
        self._stage("awaiting-crew")
        self._step_state("confirmations", "running")
        self._v2 = workflow.patched(PATCH_CREW_WAITS)
        asked_at = workflow.now()
        deadline = booking.starts_at_utc - timedelta(
            hours=self._options.confirm_deadline_hours_before
        )
        escalated = False
        reminder_every = timedelta(hours=self._options.reminder_after_hours)
        while True:
            self._check_cancelled()
            if self._reschedule is not None:
                change, self._reschedule = self._reschedule, None
                try:
                    booking = await self._apply_reschedule(booking, change)
                except ActivityError as err:
                    self._status.error = f"reschedule refused: {err.cause or err}"
                    continue
                asked_at, escalated = workflow.now(), False
                deadline = booking.starts_at_utc - timedelta(
                    hours=self._options.confirm_deadline_hours_before
                )
                continue
            while self._assignments:
                booking = await self._assign(booking, self._assignments.pop(0))
            if self._v2:  # confirmations that came in with their member's assignment
                held, self._early = self._early, []
                for early in held:
                    self._apply_confirmation(early)
            await self._alert_declines()
            pending = [a for a in self._current_answers(booking) if a.answer != "accepted"]
            self._publish_crew_state(pending)
            if not pending:
                break
            seen = self._changes
            now = workflow.now()
            if self._v2:
                dues = [self._reminder_due(a, asked_at) for a in pending]
                next_reminder = min((d for d in dues if d is not None), default=None)
            else:
                reminders_done = min(a.reminders_sent for a in pending)
                next_reminder = (
                    asked_at + reminder_every * (reminders_done + 1)
                    if reminders_done < self._options.max_reminders
                    else None
                )
            wake_times = [t for t in (next_reminder, None if escalated else deadline) if t]
            timeout = max(min(wake_times) - now, timedelta(seconds=1)) if wake_times else None
            try:
                await workflow.wait_condition(
                    lambda seen=seen: self._changes != seen,  # type: ignore[misc]
                    timeout=timeout,
                )
            except TimeoutError:
                now = workflow.now()
                if not escalated and now >= deadline:
                    escalated = True
                    await self._escalate_deadline(booking, pending)
                elif next_reminder is not None and now >= next_reminder:
                    await self._remind(booking, pending, asked_at if self._v2 else None)
        self._step_state("confirmations", "done")
        self._unblock(contract.BLOCKED_CREW_CONFIRMATIONS)
        self._unblock(contract.BLOCKED_CREW_DECLINED)
        if self._v2:
            self._unblock(contract.BLOCKED_CREW_DEADLINE)
        return booking

    def _reminder_due(self, answer: CrewAnswer, asked_at: datetime) -> datetime | None:
        """When this member's next reminder is due, on their own clock (a replacement's starts
        at their invite); None once they answered or had max_reminders."""
        if answer.answer != "pending" or answer.reminders_sent >= self._options.max_reminders:
            return None
        since = max(asked_at, self._invited_at.get(answer.crew_id, asked_at))
        every = timedelta(hours=self._options.reminder_after_hours)
        return since + every * (answer.reminders_sent + 1)

    async def _finalize(self, booking: Booking) -> str:
        """The captain's summary and the calendar's confirmation (side by side since v3)."""
        self._stage("finalizing")
        summary = self._step(
            "captain_summary",
            lambda: self._activity(
                EmailActivities.send_captain_summary,
                CaptainSummaryRequest(
                    idempotency_key=f"{self._wf_id}:captain-summary:{self._round}",
                    booking=booking,
                    charter=self._view(booking),
                    confirmations=self._current_answers(booking),
                ),
            ),
        )
        confirmed = self._step(
            "calendar_confirmed",
            lambda: self._activity(
                CalendarActivities.update_calendar_entry,
                CalendarStatusRequest(entry_id=self._calendar_id or "", status="confirmed"),
            ),
        )
        if self._parallel:
            sent, _ = await asyncio.gather(summary, confirmed)
        else:
            sent = await summary
            await confirmed
        self._stage("confirmed")
        return sent.message_id

    # ---- cancellation and changes ---------------------------------------------------------

    async def _compensate(self) -> BookingResult:
        """Undo what was done, each compensation once: calendar, SCC, guest page, crew."""
        self._stage("cancelling")
        booking = self._booking
        if booking is not None:
            if self._calendar_id:
                await self._activity(
                    CalendarActivities.update_calendar_entry,
                    CalendarStatusRequest(entry_id=self._calendar_id, status="cancelled"),
                )
                self._step_state("calendar", "compensated")
            if self._event_id:
                await self._activity(
                    SccActivities.update_scc_event,
                    SccUpdateRequest(
                        event_id=self._event_id, status="cancelled", charter=self._view(booking)
                    ),
                )
                self._step_state("scc_event", "compensated")
            if self._page is not None:
                await self._publish_guest_page(booking, cancelled=True)
                self._step_state("guest_page", "compensated")
            if self._notified:
                await self._notify_crew(booking, kind="cancelled", only=sorted(self._notified))
        self._unblock(None)
        self._stage("cancelled")
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._result("cancelled", None)

    async def _apply_reschedule(self, booking: Booking, change: Reschedule) -> Booking:
        update: dict[str, Any] = {"starts_at": change.starts_at}
        if change.duration_hours is not None:
            update["duration_hours"] = change.duration_hours
        raw = {
            **booking.model_dump(mode="json"),
            **{k: str(v) if k == "duration_hours" else v for k, v in update.items()},
        }
        raw["starts_at"] = change.starts_at.isoformat()
        raw["slug"] = booking.page_slug
        booking = await self._activity(validate_booking, raw)
        self._booking = booking
        self._status.error = None
        self._round += 1
        self._status.round = self._round
        self._status.charter = self._view(booking)
        for answer in self._answers.values():
            if answer.answer != "replaced":
                answer.answer, answer.by, answer.reminders_sent = "pending", None, 0
        await self._activity(
            CalendarActivities.update_calendar_entry,
            CalendarStatusRequest(
                entry_id=self._calendar_id or "", status="tentative", booking=booking
            ),
        )
        if self._event_id:
            await self._activity(
                SccActivities.update_scc_event,
                SccUpdateRequest(
                    event_id=self._event_id, status="rescheduled", charter=self._view(booking)
                ),
            )
        await self._publish_guest_page(booking)
        await self._notify_crew(booking, kind="rescheduled")
        self._stage("awaiting-crew")
        return booking

    async def _assign(self, booking: Booking, change: AssignCrew) -> Booking:
        old = self._answers.get(change.replaces)
        if old is None or old.answer == "replaced" or change.member.id in self._answers:
            workflow.logger.warning("assign_crew ignored: unknown or already replaced member")
            return booking
        old.answer = "replaced"
        if old.role == "captain":
            booking = booking.model_copy(update={"captain": change.member})
        else:
            crew = [change.member if m.id == change.replaces else m for m in booking.crew]
            booking = booking.model_copy(update={"crew": crew})
        self._booking = booking
        self._answers[change.member.id] = CrewAnswer(
            crew_id=change.member.id, name=change.member.name, role=old.role
        )
        self._status.charter = self._view(booking)
        self._invited_at[change.member.id] = workflow.now()
        await self._email_member(booking, old.role, change.member, "invite")
        return booking

    async def _alert_declines(self) -> None:
        declined = [a for a in self._answers.values() if a.answer == "declined"]
        for answer in declined:
            if self._v2:
                if f"{self._round}:{answer.crew_id}" in self._alerted:
                    continue
                self._alerted.add(f"{self._round}:{answer.crew_id}")
            await self._activity(
                EmailActivities.alert_operations,
                OperationsAlertRequest(
                    idempotency_key=f"{self._wf_id}:declined:{self._round}:{answer.crew_id}",
                    subject=f"{self._status.booking_ref}: {answer.name} declined",
                    body=(
                        f"{answer.name} ({answer.role}) declined booking "
                        f"{self._status.booking_ref}. Assign a replacement with "
                        f"`charters assign {self._wf_id} {answer.crew_id} replacement.yaml`."
                    ),
                ),
            )
        if declined:
            self._block(
                contract.BLOCKED_CREW_DECLINED, "a crew member declined; assign a replacement"
            )

    async def _remind(
        self, booking: Booking, pending: list[CrewAnswer], asked_at: datetime | None = None
    ) -> None:
        """Reminds pending members; with `asked_at` (PATCH_CREW_WAITS) only those whose own
        reminder is due, never past max_reminders."""
        members = {m.id: (r, m) for r, m in self._members(booking)}
        now = workflow.now()
        for answer in pending:
            if answer.answer != "pending" or answer.crew_id not in members:
                continue
            if asked_at is not None:
                due = self._reminder_due(answer, asked_at)
                if due is None or due > now:
                    continue
            answer.reminders_sent += 1
            role, member = members[answer.crew_id]
            await self._activity(
                EmailActivities.send_crew_email,
                CrewEmailRequest(
                    idempotency_key=(
                        f"{self._wf_id}:reminder:{self._round}:{answer.reminders_sent}:{member.id}"
                    ),
                    workflow_id=self._wf_id,
                    member=member,
                    role=role,
                    charter=self._view(booking),
                    kind="reminder",
                    round=self._round,
                ),
            )

    async def _escalate_deadline(self, booking: Booking, pending: list[CrewAnswer]) -> None:
        names = ", ".join(a.name for a in pending)
        reason = f"confirmation deadline passed; still waiting on {names}"
        self._block(contract.BLOCKED_CREW_DEADLINE, reason)
        await self._activity(
            EmailActivities.alert_operations,
            OperationsAlertRequest(
                idempotency_key=f"{self._wf_id}:deadline:{self._round}",
                subject=f"{booking.booking_ref}: crew not confirmed by the deadline",
                body=f"Still waiting on {names}. Confirm for them or assign replacements.",
            ),
        )

    # ---- signals and queries --------------------------------------------------------------

    @workflow.signal(name=contract.SIGNAL_CREW_CONFIRMATION)
    def crew_confirmation(self, signal: CrewConfirmation) -> None:
        if not self._answers:
            self._early.append(signal)
            return
        self._apply_confirmation(signal)

    @workflow.signal(name=contract.SIGNAL_ASSIGN_CREW)
    def assign_crew(self, signal: AssignCrew) -> None:
        self._assignments.append(signal)
        self._changes += 1

    @workflow.signal(name=contract.SIGNAL_CANCEL_BOOKING)
    def cancel_booking(self, signal: CancelBooking) -> None:
        if self._cancel is None:
            self._cancel = signal
            self._changes += 1

    @workflow.signal(name=contract.SIGNAL_RESCHEDULE)
    def reschedule(self, signal: Reschedule) -> None:
        self._reschedule = signal
        self._changes += 1

    @workflow.signal(name=contract.SIGNAL_APPROVE_SCC_KEY_REPAIR)
    def approve_scc_key_repair(self, signal: ApproveSccKeyRepair | None = None) -> None:
        by = signal.approved_by if signal else "operator"
        workflow.logger.info("SCC key repair approved by %s", by)
        self._repair_requested = True

    @workflow.query(name=contract.QUERY_STATUS)
    def status(self) -> BookingStatus:
        return self._status.model_copy(
            update={"crew": [a.model_copy() for a in self._answers.values()]}
        )

    def _apply_confirmation(self, signal: CrewConfirmation) -> None:
        answer = self._answers.get(signal.crew_id)
        coming = any(a.member.id == signal.crew_id for a in self._assignments)
        if answer is None and coming and self._v2:
            self._early.append(signal)  # applied once _assign has created the answer
            return
        wanted = "accepted" if signal.decision == "accept" else "declined"
        if answer is None or answer.answer in ("replaced", wanted):
            return
        if signal.round is not None and signal.round != self._round:
            workflow.logger.info("ignored %s from a superseded invitation", signal.crew_id)
            return
        answer.answer, answer.by = wanted, signal.by  # type: ignore[assignment]
        self._changes += 1

    # ---- plumbing ---------------------------------------------------------------------------

    async def _activity(
        self, fn: Callable[..., Any], *args: Any, non_retryable: list[str] | None = None
    ) -> Any:
        return await workflow.execute_activity(
            fn,
            *args,
            start_to_close_timeout=timedelta(seconds=self._options.activity_timeout_seconds),
            summary=SUMMARIES.get(getattr(fn, "__name__", "")),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1),
                maximum_interval=timedelta(seconds=self._options.activity_max_interval_seconds),
                non_retryable_error_types=non_retryable,
            ),
        )

    async def _step(self, name: str, run: Callable[[], Awaitable[T]]) -> T:
        self._step_state(name, "running")
        try:
            result = await run()
        except ActivityError as err:
            if name == "scc_event" and _error_type(err) == errors.SCC_AUTH_REJECTED:
                self._step_state(name, "retrying")
                raise
            raise self._failed(name, err) from err
        self._step_state(name, "done")
        return result

    def _failed(self, step: str, err: ActivityError) -> ApplicationError:
        cause = err.cause
        detail = str(cause) if cause is not None else str(err)
        self._step_state(step, "failed")
        self._status.error = f"step {step} failed: {detail}"
        self._stage("failed")
        kind = _error_type(err) or "StepFailed"
        return ApplicationError(self._status.error, type=kind, non_retryable=True)

    def _check_cancelled(self) -> None:
        if self._cancel is not None:
            raise BookingCancelled()

    def _members(self, booking: Booking) -> list[tuple[Role, CrewMember]]:
        return booking.members

    def _current_answers(self, booking: Booking) -> list[CrewAnswer]:
        return [self._answers[m.id] for _, m in booking.members if m.id in self._answers]

    def _view(self, booking: Booking) -> CrewView:
        return booking.crew_view(self._options.guest_page_url)

    def _stage(self, stage: str) -> None:
        self._status.stage = stage
        self._details()
        workflow.metric_meter().create_counter(
            "charters_booking_stage_transitions", "bookings entering each stage"
        ).add(1, {"stage": stage})
        if stage in ("confirmed", "cancelled", "failed"):
            workflow.metric_meter().create_counter(
                "charters_bookings_completed", "bookings finished, by outcome"
            ).add(1, {"outcome": stage})
        workflow.upsert_search_attributes([contract.SA_BOOKING_STAGE.value_set(stage)])

    def _details(self) -> None:
        """What the Web UI shows as the workflow's current details."""
        text = f"**Stage:** {self._status.stage}"
        if self._status.blocked_on:
            text += f"\n\n**Blocked on {self._status.blocked_on}:** {self._status.blocked_reason}"
        workflow.set_current_details(text)

    def _step_state(self, step: str, state: StepState) -> None:
        self._status.steps[step] = state

    def _block(self, on: str, reason: str) -> None:
        if self._status.blocked_on != on or self._status.blocked_reason != reason:
            self._status.blocked_on, self._status.blocked_reason = on, reason
            self._details()
            workflow.upsert_search_attributes([contract.SA_BLOCKED_ON.value_set(on)])

    def _unblock(self, on: str | None) -> None:
        if self._status.blocked_on is not None and on in (None, self._status.blocked_on):
            self._status.blocked_on = self._status.blocked_reason = None
            self._details()
            workflow.upsert_search_attributes([contract.SA_BLOCKED_ON.value_unset()])

    def _publish_crew_state(self, pending: list[CrewAnswer]) -> None:
        workflow.upsert_search_attributes([contract.SA_CREW_PENDING.value_set(len(pending))])
        if any(a.answer == "declined" for a in pending):
            return
        self._unblock(contract.BLOCKED_CREW_DECLINED)
        if pending:
            names = ", ".join(a.name for a in pending)
            if self._status.blocked_on != contract.BLOCKED_CREW_DEADLINE:
                self._block(contract.BLOCKED_CREW_CONFIRMATIONS, f"waiting for {names}")

    def _result(self, outcome: str, summary_id: str | None) -> BookingResult:
        booking = self._booking
        return BookingResult(
            workflow_id=self._wf_id,
            booking_ref=self._status.booking_ref,
            outcome=outcome,
            calendar_entry_id=self._calendar_id,
            scc_event_id=self._event_id,
            guest_page_url=self._options.guest_page_url,
            guest_page_key=self._page.key if self._page else "",
            invalidation_ids=list(self._invalidations),
            crew_email_ids=dict(self._emails),
            captain_summary_email_id=summary_id,
            confirmations=self._current_answers(booking) if booking else [],
        )


def _error_type(err: ActivityError) -> str | None:
    cause = err.cause
    return cause.type if isinstance(cause, ApplicationError) else None
