"""People's actions on a booking, as the workflow receives them: Workflow Updates that return
the workflow's own `Verdict` (a validator refuses what the workflow would ignore, so nothing
refused enters history), the same actions as signals for scripts (validated the same way; a
refused signal is logged and dropped), and the queries.

A mixin of `CharterBookingWorkflow`. A handler records what was asked and, where that is all
there is to it (an answer, a new member in a seat), applies it at once; what takes steps (a
cancel, a reschedule, a repair) the process picks up at its next await. No handler waits for
the main loop, so the drain before continue-as-new cannot deadlock."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from charters import contract
from charters.models import (
    ApproveSccKeyRepair,
    AssignCrew,
    BookingOptions,
    BookingState,
    BookingStatus,
    CancelBooking,
    CrewConfirmation,
    EmailBounced,
    MoveBrand,
    Reschedule,
    ResolveBlock,
    Verdict,
)
from charters.workflows.failures import refuse

if TYPE_CHECKING:
    from charters.workflows.bookkeeping import Bookkeeping
    from charters.workflows.bounces import CrewBounces
    from charters.workflows.branding import BrandMoves
    from charters.workflows.crew import CrewWaits
    from charters.workflows.rescheduling import Rescheduling
    from charters.workflows.seat_changes import SeatChanges
    from charters.workflows.steps import StepRunner
    from charters.workflows.texts import Texts


def _recorded(message: str) -> Verdict:
    return Verdict(recorded=True, code="recorded", message=message)


class BookingHandlers:
    _workflow_id: str
    _options: BookingOptions
    _state: BookingState
    _book: Bookkeeping
    _crew: CrewWaits
    _seat_changes: SeatChanges
    _bounces: CrewBounces
    _rescheduling: Rescheduling
    _steps: StepRunner
    _moves: BrandMoves
    _texts: Texts

    # Provided by the workflow: wake its main loop; the one way a booking is cancelled.
    _changed: Callable[[], None]
    _request_cancel: Callable[[CancelBooking], None]

    # ---- a crew member's answer -------------------------------------------------------------

    @workflow.update(name=contract.UPDATE_CREW_CONFIRMATION)
    async def confirm_update(self, answer: CrewConfirmation) -> Verdict:
        """Held until the booking is validated (the crew is known only then). What changed
        meanwhile is answered as a verdict, never as a failure."""
        await workflow.wait_condition(
            lambda: bool(self._state.crew.answers) or self._state.requests.cancel is not None
        )
        try:
            self._crew.check_answer(answer)
        except ApplicationError as refused:
            return Verdict(recorded=False, code=refused.type or "invalid", message=refused.message)
        self._changed()
        return self._crew.record_answer(answer)

    @confirm_update.validator
    def _check_confirm(self, answer: CrewConfirmation) -> None:
        self._crew.check_answer(answer)

    @workflow.signal(name=contract.SIGNAL_CREW_CONFIRMATION)
    def crew_confirmation(self, answer: CrewConfirmation) -> None:
        if not self._state.crew.answers:
            self._state.crew.held.append(answer)
            return
        try:
            self._crew.check_answer(answer)
        except ApplicationError as refused:
            workflow.logger.info("crew_confirmation ignored: %s", refused.message)
            return
        self._crew.record_answer(answer)
        self._changed()

    # ---- a member in a seat -----------------------------------------------------------------

    @workflow.update(name=contract.UPDATE_ASSIGN_CREW)
    def assign_update(self, change: AssignCrew) -> Verdict:
        self._assign(change)
        return _recorded(
            f"{change.member.name} takes the seat of {change.replaces}; invitation on its way"
        )

    @assign_update.validator
    def _check_assign(self, change: AssignCrew) -> None:
        self._seat_changes.check(change)

    @workflow.signal(name=contract.SIGNAL_ASSIGN_CREW)
    def assign_crew(self, change: AssignCrew) -> None:
        try:
            self._seat_changes.check(change)
        except ApplicationError as refused:
            workflow.logger.info("assign_crew ignored: %s", refused.message)
            return
        self._assign(change)

    def _assign(self, change: AssignCrew) -> None:
        """The seat changes hands; the member who leaves it is told (unless they declined),
        their bounces no longer count, and the page and the SCC event are to name the new
        crew."""
        self._seat_changes.assign(change)
        self._bounces.forget(change.replaces)
        self._changed()

    # ---- cancel -----------------------------------------------------------------------------

    @workflow.update(name=contract.UPDATE_CANCEL_BOOKING)
    def cancel_update(self, cancel: CancelBooking) -> Verdict:
        self._request_cancel(cancel)
        return _recorded("cancellation recorded: calendar, SCC, guest page and crew will be told")

    @cancel_update.validator
    def _check_cancel(self, cancel: CancelBooking) -> None:
        self._crew.check_open()

    @workflow.signal(name=contract.SIGNAL_CANCEL_BOOKING)
    def cancel_booking(self, cancel: CancelBooking) -> None:
        try:
            self._crew.check_open()
        except ApplicationError as refused:
            workflow.logger.info("cancel_booking ignored: %s", refused.message)
            return
        self._request_cancel(cancel)

    # ---- a change of date -------------------------------------------------------------------

    @workflow.update(name=contract.UPDATE_RESCHEDULE)
    def reschedule_update(self, change: Reschedule) -> Verdict:
        self._state.requests.reschedules.append(change)
        self._changed()
        return _recorded(
            f"reschedule to {change.starts_at:%Y-%m-%d %H:%M} recorded; "
            "calendar, SCC, guest page and crew follow"
        )

    @reschedule_update.validator
    def _check_reschedule(self, change: Reschedule) -> None:
        self._crew.check_open()
        if self._state.booking is not None:
            self._rescheduling.check(change)

    @workflow.signal(name=contract.SIGNAL_RESCHEDULE)
    def reschedule(self, change: Reschedule) -> None:
        try:
            self._check_reschedule(change)
        except ApplicationError as refused:
            workflow.logger.info("reschedule ignored: %s", refused.message)
            return
        self._state.requests.reschedules.append(change)
        self._changed()

    # ---- another brand ----------------------------------------------------------------------

    @workflow.update(name=contract.UPDATE_MOVE_BRAND)
    def move_brand_update(self, move: MoveBrand) -> Verdict:
        self._state.requests.moves.append(move)
        self._changed()
        return _recorded(
            f"move to {move.brand} recorded; the page moves, the old one links to it, and the "
            "guest is told"
        )

    @move_brand_update.validator
    def _check_move_brand(self, move: MoveBrand) -> None:
        self._crew.check_open()
        self._moves.check(move)

    @workflow.signal(name=contract.SIGNAL_MOVE_BRAND)
    def move_brand(self, move: MoveBrand) -> None:
        try:
            self._check_move_brand(move)
        except ApplicationError as refused:
            workflow.logger.info("move_brand ignored: %s", refused.message)
            return
        self._state.requests.moves.append(move)
        self._changed()

    # ---- operators --------------------------------------------------------------------------

    @workflow.update(name=contract.UPDATE_APPROVE_SCC_KEY_REPAIR)
    def approve_repair_update(self, approval: ApproveSccKeyRepair) -> Verdict:
        self._approve(approval)
        return _recorded("repair approved: the worker sets the hash now")

    @approve_repair_update.validator
    def _check_approve(self, approval: ApproveSccKeyRepair) -> None:
        if not self._book.blocked(contract.BLOCKED_SCC_KEY_HASH):
            raise refuse(contract.REFUSED_NOT_BLOCKED, "this booking is not blocked on the SCC key")

    @workflow.signal(name=contract.SIGNAL_APPROVE_SCC_KEY_REPAIR)
    def approve_scc_key_repair(self, approval: ApproveSccKeyRepair | None = None) -> None:
        approval = approval or ApproveSccKeyRepair()
        try:
            self._check_approve(approval)
        except ApplicationError as refused:
            workflow.logger.info("approve_scc_key_repair ignored: %s", refused.message)
            return
        self._approve(approval)

    def _approve(self, approval: ApproveSccKeyRepair) -> None:
        workflow.logger.info("SCC key repair approved by %s", approval.approved_by)
        self._state.requests.repair_requested = True
        self._changed()

    @workflow.update(name=contract.UPDATE_RESOLVE_BLOCK)
    def resolve_block(self, answer: ResolveBlock) -> Verdict:
        on = self._steps.resolve(answer)
        self._changed()
        return _recorded(f"{on}: {answer.action} now")

    @resolve_block.validator
    def _check_resolve(self, answer: ResolveBlock) -> None:
        self._steps.check_resolve(answer)

    @workflow.signal(name=contract.SIGNAL_EMAIL_BOUNCED)
    def email_bounced(self, bounce: EmailBounced) -> None:
        if bounce.recipient != "crew":
            if self._state.requests.cancel is None:
                self._not_received(bounce)
                self._changed()
            return
        if not self._state.crew.answers or self._state.departed:
            workflow.logger.info("email_bounced ignored: no crew to block (%s)", bounce.crew_id)
            return
        if self._state.requests.cancel is not None:
            return
        self._bounces.bounced(bounce)
        self._changed()

    def _not_received(self, bounce: EmailBounced) -> None:
        """The guest's or operations' address did not take our mail: noted in `status` (for a
        guest who will not get our mail, a block with the fix and one alert); nothing waits on
        it."""
        what = f"{bounce.kind}: {bounce.reason}" + (", for now" if bounce.transient else "")
        if bounce.recipient == "operations":
            note = f"an operations alert did not arrive ({what}): check CHARTERS_OPERATIONS_EMAIL"
        else:
            note = f"the guest did not get our email ({what})"
        if note in self._state.status.notes:
            return  # SNS and SQS deliver at least once
        self._book.note(note)
        if bounce.recipient != "guest" or bounce.transient or self._state.departed:
            return
        ref, url = self._state.status.booking_ref, self._state.guest_page_url
        fix = (
            f"reach the guest through Boatsetter or by phone with their page {url}, and correct "
            "their address there; the booking goes on, and this stays shown until departure"
        )
        reason = f"the guest's address does not receive our mail ({what})"
        self._book.block(contract.BLOCKED_GUEST_EMAIL, reason, fix)
        self._steps.alert(
            "guest-bounce", f"{ref}: the guest did not get our email", f"{reason}.\nFix: {fix}"
        )

    @workflow.query(name=contract.QUERY_STATUS)
    def status(self) -> BookingStatus:
        return self._state.status.model_copy(
            update={
                "crew": [
                    answer.model_copy(update={"sms": self._texts.shown(answer.crew_id)})
                    for answer in self._state.crew.answers.values()
                ]
            }
        )
