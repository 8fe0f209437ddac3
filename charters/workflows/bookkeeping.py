"""What operators see of a booking: stage, steps, blocks, the Web UI's details and the search
attributes. Search attributes are upserted in one command, only when one of them changed (a stage
change, a block, a crew count), never per step: every upsert is a history event."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate

from charters import contract
from charters.models import Block, BookingState, StepState

FINAL_STAGES = ("completed", "cancelled", "failed")


class Bookkeeping:
    def __init__(self, state: BookingState) -> None:
        self._s = state
        self._published: dict[str, Any] = {"stage": "received"}
        self._meter = workflow.metric_meter()

    @property
    def stage(self) -> str:
        return self._s.status.stage

    def set_stage(self, stage: str) -> None:
        if self._s.status.stage == stage:
            return
        self._s.status.stage = stage
        self._meter.create_counter(
            "charters_booking_stage_transitions", "bookings entering each stage"
        ).add(1, {"stage": stage})
        if stage in FINAL_STAGES:
            self._meter.create_counter(
                "charters_bookings_completed", "bookings finished, by outcome"
            ).add(1, {"outcome": stage})
        self.publish()

    def step(self, name: str, state: StepState) -> None:
        self._s.status.steps[name] = state

    def note(self, text: str) -> None:
        """Something people should know that is not a block (kept short: the last ten)."""
        self._s.status.notes = [*self._s.status.notes[-9:], text]

    # ---- blocks ---------------------------------------------------------------------------

    def block(self, on: str, reason: str, fix: str, since: datetime | None = None) -> None:
        blocks = [b for b in self._s.status.blocks if b.on != on]
        old = next((b for b in self._s.status.blocks if b.on == on), None)
        if old is not None and old.reason == reason and old.fix == fix:
            return
        blocks.append(Block(on=on, reason=reason, fix=fix, since=since or workflow.now()))
        self._s.status.blocks = blocks
        self._sync_first_block()

    def unblock(self, on: str) -> None:
        if any(b.on == on for b in self._s.status.blocks):
            self._s.status.blocks = [b for b in self._s.status.blocks if b.on != on]
            self._sync_first_block()

    def blocked(self, on: str) -> bool:
        return any(b.on == on for b in self._s.status.blocks)

    def _sync_first_block(self) -> None:
        """`blocked_on` (and the BlockedOn attribute) shows the most pressing block: anything a
        person must fix comes before plain waiting for answers. Its value is the kind of block
        (`crew-email`), the member it concerns is in the reason (attributes are not encrypted)."""
        blocks = self._s.status.blocks
        first = next(
            (b for b in blocks if b.on != contract.BLOCKED_CREW_CONFIRMATIONS),
            blocks[0] if blocks else None,
        )
        status = self._s.status
        status.blocked_on = first.on.split(":", 1)[0] if first else None
        status.blocked_reason = first.reason if first else None
        status.blocked_fix = first.fix if first else None
        self.publish()

    # ---- what the Web UI shows ------------------------------------------------------------

    def publish(self) -> None:
        """Current details and the search attributes that changed, in one upsert."""
        status = self._s.status
        text = f"**Stage:** {status.stage}"
        for b in status.blocks:
            text += f"\n\n**Blocked on {b.on}:** {b.reason}\n\nFix: `{b.fix}`"
        workflow.set_current_details(text)
        pending = sum(1 for a in self._current_answers() if a.answer != "accepted")
        wanted: dict[str, Any] = {
            "stage": status.stage,
            "blocked": status.blocked_on,
            "pending": pending if self._s.booking else None,
            "date": self._s.booking.starts_at_utc if self._s.booking else None,
        }
        updates: list[SearchAttributeUpdate[Any]] = []
        keys: dict[str, Any] = {
            "stage": contract.SA_BOOKING_STAGE,
            "blocked": contract.SA_BLOCKED_ON,
            "pending": contract.SA_CREW_PENDING,
            "date": contract.SA_CHARTER_DATE,
        }
        for name, value in wanted.items():
            if name in self._published and self._published[name] == value:
                continue
            if value is None and name not in self._published:
                continue
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
        status = self._s.status
        self._published = {
            "stage": status.stage,
            "blocked": status.blocked_on,
            "pending": sum(1 for a in self._current_answers() if a.answer != "accepted"),
            "date": self._s.booking.starts_at_utc if self._s.booking else None,
        }

    def _current_answers(self) -> list[Any]:
        booking = self._s.booking
        if booking is None:
            return []
        return [self._s.answers[m.id] for _, m in booking.members if m.id in self._s.answers]
