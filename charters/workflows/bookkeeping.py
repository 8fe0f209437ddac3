"""What operators see of a booking: stage, steps, blocks, the Web UI's details and the search
attributes. Search attributes are upserted in one command, only when one of them changed (a stage
change, a block, a crew count), never per step: every upsert is a history event."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate

from charters import contract
from charters.contract import Stage
from charters.models import Block, BookingState, StepState

STEPS = [  # the steps `status` lists, in the order the booking meets them
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


class Bookkeeping:
    """Owns `state.status`: what `charters status`, the Web UI and the search attributes show."""

    def __init__(self, state: BookingState) -> None:
        self._state = state
        self._published: dict[str, Any] = {"stage": Stage.RECEIVED.value}
        started_on = workflow.info().typed_search_attributes.get(contract.SA_BRAND)
        if started_on is not None:  # the starter set Brand: no upsert while the brand is that
            self._published["brand"] = started_on
        self._meter = workflow.metric_meter()

    @property
    def stage(self) -> Stage:
        return Stage(self._state.status.stage)

    def set_stage(self, stage: Stage) -> None:
        if self._state.status.stage == stage:
            return
        self._state.status.stage = stage.value
        self._meter.create_counter(
            "charters_booking_stage_transitions", "bookings entering each stage"
        ).add(1, {"stage": stage.value})
        if stage in contract.FINAL_STAGES:
            self._meter.create_counter(
                "charters_bookings_completed", "bookings finished, by outcome"
            ).add(1, {"outcome": stage.value})
        self.publish()

    def step(self, name: str, state: StepState) -> None:
        self._state.status.steps[name] = state

    def note(self, text: str) -> None:
        """Something people should know that is not a block (kept short: the last ten)."""
        self._state.status.notes = [*self._state.status.notes[-9:], text]

    # ---- blocks ---------------------------------------------------------------------------

    def block(self, on: str, reason: str, fix: str, since: datetime | None = None) -> None:
        blocks = [b for b in self._state.status.blocks if b.on != on]
        old = next((b for b in self._state.status.blocks if b.on == on), None)
        if old is not None and old.reason == reason and old.fix == fix:
            return
        blocks.append(Block(on=on, reason=reason, fix=fix, since=since or workflow.now()))
        self._state.status.blocks = blocks
        self._sync_first_block()

    def unblock(self, on: str) -> None:
        if any(b.on == on for b in self._state.status.blocks):
            self._state.status.blocks = [b for b in self._state.status.blocks if b.on != on]
            self._sync_first_block()

    def blocked(self, on: str) -> bool:
        return any(b.on == on for b in self._state.status.blocks)

    def _sync_first_block(self) -> None:
        """`blocked_on` (and the BlockedOn attribute) shows the most pressing block: anything a
        person must fix comes before plain waiting for answers. Its value is the kind of block
        (`crew-email`), the member it concerns is in the reason (attributes are not encrypted)."""
        blocks = self._state.status.blocks
        first = next(
            (b for b in blocks if b.on != contract.BLOCKED_CREW_CONFIRMATIONS),
            blocks[0] if blocks else None,
        )
        status = self._state.status
        status.blocked_on = first.on.split(":", 1)[0] if first else None
        status.blocked_reason = first.reason if first else None
        status.blocked_fix = first.fix if first else None
        self.publish()

    # ---- what the Web UI shows ------------------------------------------------------------

    def publish(self) -> None:
        """Current details and the search attributes that changed, in one upsert."""
        status = self._state.status
        text = f"**Stage:** {status.stage}"
        for b in status.blocks:
            text += f"\n\n**Blocked on {b.on}:** {b.reason}\n\nFix: `{b.fix}`"
        workflow.set_current_details(text)
        pending = self._pending()
        wanted: dict[str, Any] = {
            "stage": status.stage,
            "blocked": status.blocked_on,
            "pending": pending if self._state.booking else None,
            "date": self._state.booking.starts_at_utc if self._state.booking else None,
            "brand": self._state.booking.brand if self._state.booking else None,
        }
        updates: list[SearchAttributeUpdate[Any]] = []
        keys: dict[str, Any] = {
            "stage": contract.SA_BOOKING_STAGE,
            "blocked": contract.SA_BLOCKED_ON,
            "pending": contract.SA_CREW_PENDING,
            "date": contract.SA_CHARTER_DATE,
            "brand": contract.SA_BRAND,
        }
        for name, value in wanted.items():
            if name in self._published and self._published[name] == value:
                continue
            if value is None and (name not in self._published or name == "brand"):
                continue  # a brand is never unset: a booking without one is on the default
            key = keys[name]
            updates.append(key.value_unset() if value is None else key.value_set(value))
            self._published[name] = value
        if updates:
            workflow.upsert_search_attributes(updates)

    def restore_date(self, booking: Any) -> None:
        """The starter set CharterDate from the same booking: no upsert needed for it."""
        self._published.setdefault("date", booking.starts_at_utc)

    def restore(self) -> None:
        """After continue-as-new the search attributes carry over: note what they hold."""
        status = self._state.status
        self._published = {
            "stage": status.stage,
            "blocked": status.blocked_on,
            "pending": self._pending(),
            "date": self._state.booking.starts_at_utc if self._state.booking else None,
            "brand": self._state.booking.brand if self._state.booking else None,
        }

    def _pending(self) -> int:
        """Seats still to answer; none once the booking is cancelling or over (nobody is
        waited for any more)."""
        booking = self._state.booking
        if booking is None:
            return 0
        if self._state.status.stage in (Stage.CANCELLING, Stage.CANCELLED, Stage.FAILED):
            return 0
        answers = self._state.crew.answers
        return sum(
            1
            for _, member in booking.members
            if member.id in answers and answers[member.id].answer != "accepted"
        )
