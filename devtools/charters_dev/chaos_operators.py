"""People acting on bookings during a chaos run, the way they act in production: crew answering
(Workflow Updates through `charters.actions.act`, as the confirmation page and the CLI do),
operators declining for crew and assigning replacements, rescheduling, cancelling at a random
stage, a crew member answering after the cancel, a second start of a running booking.

Each booking gets a `Plan`; what was done and what the workflow answered is kept on the booking
(`Tracked.actions`), so the ledger can check the end state each plan calls for."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError

from charters import contract
from charters.actions import act
from charters.models import (
    ApproveSccKeyRepair,
    AssignCrew,
    BookingStatus,
    CancelBooking,
    CrewConfirmation,
    CrewMember,
    Reschedule,
    ResolveBlock,
    Verdict,
)
from charters.settings import Settings
from charters.starter.book import start_booking

# Stages in the order a booking passes them; a cancel planned at a stage fires once the booking
# is seen there or later.
STAGE_ORDER = tuple(contract.STAGES[: contract.STAGES.index("confirmed") + 1])
# Blocks that wait for the crew or an operator's decision, not for a retry.
PLANNED_BLOCKS = ("crew-declined", "crew-confirmations", "crew-deadline", "crew-unfilled")
CANCEL_STAGES = ("start", "provisioning", "publishing", "awaiting-crew", "confirmed")
REPLACEMENT = {"id": "crew-9", "name": "Riley Marsh", "email": "riley@sailjada.com"}


@dataclass
class Plan:
    kind: str = "plain"  # plain | decline-replace | replace | reschedule | cancel | second-start
    decliner: str | None = None
    replaced: str | None = None  # replace: taken off while their answer is still pending
    cancel_at: str | None = None
    late_answer: bool = False
    new_starts_at: datetime | None = None

    @property
    def ends_cancelled(self) -> bool:
        return self.kind == "cancel"

    @property
    def taken_off(self) -> str | None:
        """The member whose seat goes to REPLACEMENT: the one who declined, or the one replaced
        before answering."""
        return self.decliner if self.kind == "decline-replace" else self.replaced


def make_plans(count: int, seed: int, share: float) -> list[Plan]:
    """One plan per booking: every kind at least once (from the first bookings on), then each
    booking acts with probability `share`, the kind drawn at random."""
    rng = random.Random(seed + 2)
    fixed = [
        Plan("decline-replace", decliner="crew-2"),
        Plan("cancel", cancel_at="awaiting-crew", late_answer=True),
        Plan("reschedule"),
        Plan("second-start"),
        Plan("cancel", cancel_at="start"),
        Plan("replace", replaced="crew-1"),
    ]
    plans: list[Plan] = []
    for n in range(count):
        if n < len(fixed) and share > 0:
            plans.append(fixed[n])
            continue
        if rng.random() >= share:
            plans.append(Plan())
            continue
        kinds = ["decline-replace", "replace", "reschedule", "cancel", "cancel", "second-start"]
        kind = rng.choice(kinds)
        if kind == "cancel":
            at = rng.choice(CANCEL_STAGES)
            plans.append(Plan(kind, cancel_at=at, late_answer=rng.random() < 0.5))
        elif kind == "decline-replace":
            plans.append(Plan(kind, decliner=rng.choice(["crew-1", "crew-2", "captain-1"])))
        elif kind == "replace":
            plans.append(Plan(kind, replaced=rng.choice(["crew-1", "crew-2", "captain-1"])))
        else:
            plans.append(Plan(kind))
    return plans


def reached(stage: str, target: str) -> bool:
    if target == "start":
        return True
    if stage not in STAGE_ORDER:
        return False
    return STAGE_ORDER.index(stage) >= STAGE_ORDER.index(target)


class Operator:
    """Acts on one booking per its plan, from what its `status` shows. Each call is retried by
    the driver's loop (the server or a worker may be down); the verdicts are recorded."""

    def __init__(self, client: Client, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        # Blocks whose cause is not fixed yet (a permanent fault's window is open): left alone.
        self.held: Callable[[str], bool] = lambda on: False

    async def _act(self, t: Any, update: str, arg: Any, what: str) -> Verdict:
        verdict = await act(self.client, t.workflow_id, update, arg)
        t.actions.append({"what": what, "recorded": verdict.recorded, "code": verdict.code})
        return verdict

    def done(self, t: Any, st: BookingStatus) -> bool:
        """The plan has nothing left to do and the booking is where it should end."""
        plan: Plan = t.plan
        if plan.kind == "cancel":
            return st.stage == "cancelled" and (not plan.late_answer or t.did("late-answer"))
        if plan.kind == "reschedule" and not t.did("reschedule"):
            return False
        if plan.kind == "second-start" and not t.did("second-start"):
            return False
        if plan.taken_off and not t.did("assign"):
            return False
        waiting = [b for b in st.blocks if not b.on.startswith(PLANNED_BLOCKS)]
        return (
            st.stage == "confirmed"
            and not [c for c in st.crew if c.answer == "pending"]
            and not waiting  # an operator clears every block (an email the crew never got)
        )

    async def resolve_blocks(self, t: Any, st: BookingStatus) -> None:
        """A step blocked for a person whose cause is gone (its retry budget was spent during
        an outage, or a permanent fault was fixed): retried, as an operator would."""
        for block in st.blocks:
            if block.on.startswith(PLANNED_BLOCKS) or self.held(block.on):
                continue
            if block.on == contract.BLOCKED_SCC_KEY_HASH:
                # The hash is right again, yet this booking still waits: SCC refused it with a
                # key that looked right, and only an approved repair lets it go on.
                if not t.did("approve-repair"):
                    approval = ApproveSccKeyRepair(approved_by="chaos")
                    update = contract.UPDATE_APPROVE_SCC_KEY_REPAIR
                    await self._act(t, update, approval, "approve-repair")
                continue
            answer = ResolveBlock(action="retry", step=block.on, by="chaos")
            await self._act(t, contract.UPDATE_RESOLVE_BLOCK, answer, f"retry:{block.on}")

    async def step(self, t: Any, st: BookingStatus) -> None:
        plan: Plan = t.plan
        await self.resolve_blocks(t, st)
        if plan.kind == "second-start" and not t.did("second-start"):
            await self.second_start(t)
        if plan.kind == "cancel":
            if st.stage == "cancelled":
                if plan.late_answer and not t.did("late-answer"):
                    late = CrewConfirmation(crew_id="crew-1", decision="accept", by="chaos")
                    await self._act(t, contract.UPDATE_CREW_CONFIRMATION, late, "late-answer")
                return
            if not t.did("cancel") and reached(st.stage, plan.cancel_at or "start"):
                await self._act(
                    t, contract.UPDATE_CANCEL_BOOKING, CancelBooking(reason="chaos"), "cancel"
                )
                return
        if st.stage != "awaiting-crew":
            return
        if plan.kind == "reschedule" and not t.did("reschedule"):
            plan.new_starts_at = t.booking.starts_at + timedelta(days=1)
            moved = Reschedule(starts_at=plan.new_starts_at)
            await self._act(t, contract.UPDATE_RESCHEDULE, moved, "reschedule")
            return
        if plan.kind == "replace" and not t.did("assign"):
            await self.replace(t, plan.replaced or "")
            return
        for answer in st.crew:
            if answer.answer == "declined" and answer.crew_id == plan.decliner:
                if not t.did("assign"):
                    await self.replace(t, answer.crew_id)
                continue
            if answer.answer != "pending" or answer.crew_id == plan.replaced:
                continue
            decline = answer.crew_id == plan.decliner and not t.did("decline")
            decision = "decline" if decline else "accept"
            confirmation = CrewConfirmation(crew_id=answer.crew_id, decision=decision, by="chaos")
            verdict = await self._act(t, contract.UPDATE_CREW_CONFIRMATION, confirmation, decision)
            if verdict.recorded:
                t.answered.append(answer.crew_id)

    async def replace(self, t: Any, crew_id: str) -> None:
        member = CrewMember(**REPLACEMENT, hourly_rate=Decimal("25.00"))
        change = AssignCrew(replaces=crew_id, member=member)
        await self._act(t, contract.UPDATE_ASSIGN_CREW, change, "assign")

    async def second_start(self, t: Any) -> None:
        """The same booking started again while it runs: refused, and nothing of it doubled."""
        try:
            await start_booking(self.client, self.settings, t.booking)
        except WorkflowAlreadyStartedError:
            t.actions.append({"what": "second-start", "recorded": False, "code": "refused"})
            return
        t.actions.append({"what": "second-start", "recorded": True, "code": "started"})
