"""Moving a booking to another brand (`move_brand`), applied by the main loop like a reschedule:
the page goes up on the new brand's site and a notice linking to it replaces the old page, both
invalidated (one activity, deterministic writes); then the booking's brand, its page URL (held
in `state.guest_page_url`, so every later page, email, text and compensation follows it), the
SCC event's page link and `status` change; the guest is told the new link once. Crew links
are the confirmation server's, not the brand's, so they keep working untouched.

The workflow does not know the brand list (configuration is the worker's and the CLI's): the CLI
refuses an unknown brand before asking, and a worker that does not know it fails the move
for good, which blocks it (`brand-move`) until the worker is configured or the move skipped.
Owns `effects.moved_from`."""

from __future__ import annotations

from functools import partial

from temporalio import workflow

from charters import contract
from charters.contract import Activity
from charters.models import (
    BookingState,
    MoveBrand,
    MovePageRequest,
    MovePageResult,
)
from charters.workflows.bookkeeping import Bookkeeping
from charters.workflows.errands import Errands
from charters.workflows.failures import refuse
from charters.workflows.provisioning import Provisioning
from charters.workflows.publishing import Publishing
from charters.workflows.steps import StepRunner


class BrandMoves:
    def __init__(
        self,
        state: BookingState,
        steps: StepRunner,
        book: Bookkeeping,
        workflow_id: str,
        publishing: Publishing,
        provisioning: Provisioning,
        errands: Errands,
    ) -> None:
        self._state = state
        self._effects = state.effects
        self._steps = steps
        self._book = book
        self._workflow_id = workflow_id
        self._publishing = publishing
        self._provisioning = provisioning
        self._errands = errands

    def check(self, move: MoveBrand) -> None:
        """The validator's half (the open/closed checks are the crew's `check_open`): a move to
        the brand the booking is on (or will be, once the moves queued before it are applied) is
        refused, and so is a move back to a brand it was already moved to once (its page key,
        its invalidations and the guest's email are once per brand)."""
        if self._state.booking is None:
            raise refuse(contract.REFUSED_INVALID, "the booking is not validated yet; try again")
        queued = self._state.requests.moves
        brand = queued[-1].brand if queued else self._state.validated.brand
        if move.brand == brand:
            raise refuse(contract.REFUSED_SAME_BRAND, f"the booking is already on {move.brand}")
        if move.brand in self._effects.moved_from or any(m.brand == move.brand for m in queued):
            raise refuse(
                contract.REFUSED_SAME_BRAND,
                f"the booking was already moved to {move.brand} once; a second move there is "
                "not supported (its page key and the guest's email are once per brand)",
            )

    async def apply(self, move: MoveBrand) -> None:
        booking = self._state.validated
        old_url = self._state.guest_page_url
        request = MovePageRequest(
            idempotency_key=f"{self._workflow_id}:move:{move.brand}",
            charter=booking.crew_view(old_url),
            event_id=self._effects.event_id,
            from_brand=booking.brand,
            to_brand=move.brand,
        )
        moved = await self._steps.run(
            "brand_move",
            Activity.MOVE_GUEST_PAGE,
            request,
            MovePageResult,
            local=False,  # two sites and two invalidations: its attempts shown in the Web UI
            skippable=f"the booking stays on {booking.brand}",
        )
        if moved is None:
            self._book.note(f"move to {move.brand} skipped: the booking stays on {booking.brand}")
            return
        booking = booking.model_copy(update={"brand": move.brand})
        self._state.booking = booking
        self._state.guest_page_url = self._state.status.guest_page_url = moved.page.url
        self._state.status.charter = booking.crew_view(moved.page.url)
        self._effects.page = moved.page
        for invalidation in moved.invalidations:
            if invalidation.invalidation_id not in self._effects.invalidations:
                self._effects.invalidations.append(invalidation.invalidation_id)
        self._effects.moved_from[move.brand] = old_url
        self._book.note(
            f"moved to {move.brand} by {move.by}: the guest page is now {moved.page.url}"
        )
        self._book.publish()  # the Brand search attribute
        workflow.upsert_memo({"guest_page_url": moved.page.url})  # the Web UI's link, as at start
        self.tell_guest()
        await self._provisioning.update_scc_event()  # the crew-facing event links the page

    def tell_guest(self) -> None:
        """The guest's email with the new link, once per move, as an errand (a refused address
        blocks only that email, never the clocks); started again by the loop if a reschedule
        cancelled it before it went."""
        for brand, old_url in self._effects.moved_from.items():
            key = f"guest-moved:{brand}"
            if key in self._state.clocks.guest_emails or self._errands.running(key):
                continue
            self._errands.start(key, partial(self._email, key, old_url))

    async def _email(self, key: str, old_url: str) -> None:
        await self._publishing.email_guest("guest_moved", key, "moved", moved_from=old_url)
