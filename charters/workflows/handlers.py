"""People's actions on a booking, as the workflow receives them: Workflow Updates that return
the workflow's own `Verdict` (a validator refuses what the workflow would ignore, so nothing
refused enters history), the same actions as signals for scripts, and the queries.

A mixin of `CharterBookingWorkflow`: it only records what people asked; the workflow's run loop
applies it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from charters import contract
from charters.models import (
    ApproveSccKeyRepair,
    AssignCrew,
    BookingState,
    BookingStatus,
    CancelBooking,
    CrewConfirmation,
    EmailBounced,
    Reschedule,
    ResolveBlock,
    Verdict,
)
from charters.workflows.crew import refuse

if TYPE_CHECKING:
    from charters.workflows.bookkeeping import Bookkeeping
    from charters.workflows.crew import CrewWaits
    from charters.workflows.lifecycle import Lifecycle
    from charters.workflows.steps import StepRunner


def _recorded(message: str) -> Verdict:
    return Verdict(recorded=True, code="recorded", message=message)


class BookingHandlers:
    _s: BookingState
    _book: Bookkeeping
    _crew: CrewWaits
    _life: Lifecycle
    _steps: StepRunner
    _changes: int

    @workflow.update(name=contract.UPDATE_CREW_CONFIRMATION)
    async def confirm_update(self, answer: CrewConfirmation) -> Verdict:
        """Held until the booking is validated, or the member's assignment is applied."""
        await workflow.wait_condition(
            lambda: (
                (bool(self._s.answers) and not self._crew.arriving(answer.crew_id))
                or self._s.cancel is not None
            )
        )
        self._crew.check_answer(answer)
        self._changes += 1
        return self._crew.record_answer(answer)

    @confirm_update.validator
    def _check_confirm(self, answer: CrewConfirmation) -> None:
        self._crew.check_answer(answer)

    @workflow.signal(name=contract.SIGNAL_CREW_CONFIRMATION)
    def crew_confirmation(self, answer: CrewConfirmation) -> None:
        if not self._s.answers or self._crew.arriving(answer.crew_id):
            self._s.early.append(answer)
            return
        try:
            self._crew.check_answer(answer)
        except ApplicationError as refused:
            workflow.logger.info("crew_confirmation ignored: %s", refused.message)
            return
        self._crew.record_answer(answer)
        self._changes += 1

    @workflow.update(name=contract.UPDATE_ASSIGN_CREW)
    def assign_update(self, change: AssignCrew) -> Verdict:
        return self._assign(change)

    def _assign(self, change: AssignCrew) -> Verdict:
        self._s.assignments.append(change)
        self._changes += 1
        return _recorded(
            f"{change.member.name} takes the seat of {change.replaces}; invitation on its way"
        )

    @assign_update.validator
    def _check_assign(self, change: AssignCrew) -> None:
        self._crew.check_assignment(change)

    @workflow.signal(name=contract.SIGNAL_ASSIGN_CREW)
    def assign_crew(self, change: AssignCrew) -> None:
        try:
            self._crew.check_assignment(change)
        except ApplicationError as refused:
            workflow.logger.info("assign_crew ignored: %s", refused.message)
            return
        self._assign(change)

    @workflow.update(name=contract.UPDATE_CANCEL_BOOKING)
    def cancel_update(self, cancel: CancelBooking) -> Verdict:
        return self._cancel(cancel)

    def _cancel(self, cancel: CancelBooking) -> Verdict:
        self._s.cancel = cancel
        self._changes += 1
        return _recorded("cancellation recorded: calendar, SCC, guest page and crew will be told")

    @cancel_update.validator
    def _check_cancel(self, cancel: CancelBooking) -> None:
        self._crew.check_open()

    @workflow.signal(name=contract.SIGNAL_CANCEL_BOOKING)
    def cancel_booking(self, cancel: CancelBooking) -> None:
        if self._s.cancel is None and not self._s.departed:
            self._cancel(cancel)

    @workflow.update(name=contract.UPDATE_RESCHEDULE)
    def reschedule_update(self, change: Reschedule) -> Verdict:
        return self._reschedule(change)

    def _reschedule(self, change: Reschedule) -> Verdict:
        self._s.reschedules.append(change)
        self._changes += 1
        return _recorded(
            f"reschedule to {change.starts_at:%Y-%m-%d %H:%M} recorded; "
            "calendar, SCC, guest page and crew follow"
        )

    @reschedule_update.validator
    def _check_reschedule(self, change: Reschedule) -> None:
        self._crew.check_open()
        if self._s.booking is not None:
            self._life.check_reschedule(change)

    @workflow.signal(name=contract.SIGNAL_RESCHEDULE)
    def reschedule(self, change: Reschedule) -> None:
        try:
            self._check_reschedule(change)
        except ApplicationError as refused:
            workflow.logger.info("reschedule ignored: %s", refused.message)
            return
        self._reschedule(change)

    @workflow.update(name=contract.UPDATE_APPROVE_SCC_KEY_REPAIR)
    def approve_repair_update(self, approval: ApproveSccKeyRepair) -> Verdict:
        return self._approve(approval)

    def _approve(self, approval: ApproveSccKeyRepair) -> Verdict:
        workflow.logger.info("SCC key repair approved by %s", approval.approved_by)
        self._s.repair_requested = True
        self._changes += 1
        return _recorded("repair approved: the worker sets the hash now")

    @approve_repair_update.validator
    def _check_approve(self, approval: ApproveSccKeyRepair) -> None:
        if not self._book.blocked(contract.BLOCKED_SCC_KEY_HASH):
            raise refuse(contract.REFUSED_NOT_BLOCKED, "this booking is not blocked on the SCC key")

    @workflow.signal(name=contract.SIGNAL_APPROVE_SCC_KEY_REPAIR)
    def approve_scc_key_repair(self, approval: ApproveSccKeyRepair | None = None) -> None:
        self._approve(approval or ApproveSccKeyRepair())

    @workflow.update(name=contract.UPDATE_RESOLVE_BLOCK)
    def resolve_block(self, answer: ResolveBlock) -> Verdict:
        on = self._steps.resolve(answer)
        self._changes += 1
        return _recorded(f"{on}: {answer.action} now")

    @resolve_block.validator
    def _check_resolve(self, answer: ResolveBlock) -> None:
        self._steps.check_resolve(answer)

    @workflow.signal(name=contract.SIGNAL_EMAIL_BOUNCED)
    def email_bounced(self, bounce: EmailBounced) -> None:
        self._s.bounces.append(bounce)
        self._changes += 1

    @workflow.query(name=contract.QUERY_STATUS)
    def status(self) -> BookingStatus:
        return self._s.status.model_copy(
            update={"crew": [a.model_copy() for a in self._s.answers.values()]}
        )
