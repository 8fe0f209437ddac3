"""Once every seated member has accepted: the captain's summary (the only email with money) and
the calendar entry confirmed, side by side, as an errand beside the main loop; again for each
new crew (a replacement, a new round). Owns `crew.finalized` and `effects.summary_id`."""

from __future__ import annotations

from charters import contract
from charters.contract import Activity, Stage
from charters.models import BookingState, CaptainSummaryRequest, EmailSent
from charters.workflows.bookkeeping import Bookkeeping
from charters.workflows.crew import CrewWaits
from charters.workflows.errands import Errands
from charters.workflows.provisioning import Provisioning
from charters.workflows.steps import StepRunner
from charters.workflows.together import together


class Finalizing:
    def __init__(
        self,
        state: BookingState,
        steps: StepRunner,
        book: Bookkeeping,
        workflow_id: str,
        crew: CrewWaits,
        provisioning: Provisioning,
        errands: Errands,
    ) -> None:
        self._state = state
        self._steps = steps
        self._book = book
        self._workflow_id = workflow_id
        self._crew = crew
        self._provisioning = provisioning
        self._errands = errands

    def owed(self) -> bool:
        """Everyone accepted, and this crew (round and version) has not been finalized."""
        return not self._crew.pending() and self._state.crew.finalized != self._crew.key()

    def start(self) -> None:
        key = self._crew.key()
        self._book.set_stage(Stage.FINALIZING)
        self._book.step("confirmations", "done")
        self._book.unblock(contract.BLOCKED_CREW_DEADLINE)
        self._errands.start(f"finalize:{key}", lambda: self._finalize(key))

    async def _finalize(self, key: str) -> None:
        booking = self._state.validated
        summary_request = CaptainSummaryRequest(
            idempotency_key=f"{self._workflow_id}:captain-summary:{key}",
            booking=booking,
            charter=booking.crew_view(self._state.guest_page_url),
            confirmations=self._crew.current(),
            brand=booking.brand,
        )
        summary, _ = await together(
            self._steps.run(
                "captain_summary",
                Activity.SEND_CAPTAIN_SUMMARY,
                summary_request,
                EmailSent,
                skippable="the captain then has no summary email; send it by hand",
            ),
            self._provisioning.confirm_calendar_entry(),
        )
        if summary is not None:
            self._state.effects.summary_id = summary.message_id
        self._state.crew.finalized = key
        if key == self._crew.key() and not self._crew.pending():
            self._book.set_stage(Stage.CONFIRMED)
