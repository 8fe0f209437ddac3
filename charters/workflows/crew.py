"""The crew side of a booking: who is asked, who answered what, replacements, reminders on each
member's own clock, the deadline escalation. Owns `state.answers`; the workflow calls it and it
never imports the workflow module."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Literal

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from charters import contract
from charters.models import (
    AssignCrew,
    Booking,
    BookingOptions,
    BookingState,
    CrewAnswer,
    CrewConfirmation,
    CrewEmailRequest,
    CrewMember,
    EmailBounced,
    EmailKind,
    Role,
    Verdict,
)
from charters.workflows.bookkeeping import Bookkeeping
from charters.workflows.steps import StepRunner

with workflow.unsafe.imports_passed_through():
    from charters.activities.email import EmailActivities


def refuse(code: str, message: str) -> ApplicationError:
    """A validator's refusal: the update is rejected and nothing enters history."""
    return ApplicationError(message, type=code, non_retryable=True)


class CrewWaits:
    def __init__(
        self,
        state: BookingState,
        book: Bookkeeping,
        steps: StepRunner,
        options: BookingOptions,
        wf_id: str,
    ) -> None:
        self._s = state
        self._book = book
        self._steps = steps
        self._o = options
        self._wf_id = wf_id

    # ---- who is aboard ----------------------------------------------------------------------

    def seat(self, booking: Booking) -> None:
        for role, member in booking.members:
            if member.id not in self._s.answers:
                self._s.answers[member.id] = CrewAnswer(
                    crew_id=member.id, name=member.name, role=role
                )

    def current(self) -> list[CrewAnswer]:
        booking = self._s.booking
        if booking is None:
            return []
        return [self._s.answers[m.id] for _, m in booking.members if m.id in self._s.answers]

    def pending(self) -> list[CrewAnswer]:
        return [a for a in self.current() if a.answer != "accepted"]

    def accepted(self) -> list[tuple[Role, CrewMember]]:
        booking = self._s.booking
        if booking is None:
            return []
        return [(r, m) for r, m in booking.members if self._s.answers[m.id].answer == "accepted"]

    # ---- answers ----------------------------------------------------------------------------

    def check_answer(self, answer: CrewConfirmation) -> None:
        """The validator of `crew_confirmation`: refuse what the workflow would ignore."""
        self._check_open()
        if not self._s.answers:
            return  # not validated yet: the handler holds it until the booking is
        known = self._s.answers.get(answer.crew_id)
        if known is None and self.arriving(answer.crew_id):
            return  # their assignment is being applied: the handler waits for it
        if known is None:
            raise refuse(contract.REFUSED_UNKNOWN_MEMBER, f"{answer.crew_id} is not on this crew")
        if known.answer == "replaced":
            raise refuse(
                contract.REFUSED_REPLACED,
                f"{known.name} was replaced on this charter; this invitation no longer counts",
            )
        if answer.round is not None and answer.round != self._s.round:
            raise refuse(
                contract.REFUSED_SUPERSEDED,
                "the charter was rescheduled: this link is for the old date; use the newest email",
            )
        if known.answer == _wanted(answer):
            raise refuse(contract.REFUSED_ALREADY_ANSWERED, f"already recorded: {known.answer}")

    def arriving(self, crew_id: str) -> bool:
        return any(a.member.id == crew_id for a in self._s.assignments)

    def record_answer(self, answer: CrewConfirmation) -> Verdict:
        known = self._s.answers[answer.crew_id]
        known.answer, known.by = _wanted(answer), answer.by
        if known.answer == "accepted":
            self._book.unblock(f"crew-email:{answer.crew_id}")
        return Verdict(
            recorded=True,
            code="recorded",
            message=f"{known.name}: {known.answer}"
            + (", thank you" if known.answer == "accepted" else ""),
        )

    def check_assignment(self, change: AssignCrew) -> None:
        self._check_open()
        old = self._s.answers.get(change.replaces)
        if old is None:
            raise refuse(contract.REFUSED_UNKNOWN_MEMBER, f"{change.replaces} is not on this crew")
        if old.answer == "replaced":
            raise refuse(contract.REFUSED_REPLACED, f"{old.name} was already replaced")
        if change.member.id != change.replaces and change.member.id in self._s.answers:
            raise refuse(
                contract.REFUSED_INVALID, f"{change.member.id} is already on this charter's crew"
            )

    def check_open(self) -> None:
        self._check_open()

    def _check_open(self) -> None:
        if self._s.cancel is not None:
            raise refuse(contract.REFUSED_CANCELLED, "this charter was cancelled")
        if self._s.departed:
            raise refuse(contract.REFUSED_DEPARTED, "this charter has already sailed")

    # ---- changes the workflow applies in its own loop -------------------------------------

    async def assign(self, change: AssignCrew) -> None:
        """Put the new member in the seat and invite them. The same id with new details (say a
        corrected email address after a bounce) re-invites that member."""
        booking = self._s.booking
        assert booking is not None
        old = self._s.answers[change.replaces]
        same = change.member.id == change.replaces
        if old.role == "captain":
            booking = booking.model_copy(update={"captain": change.member})
        else:
            crew = [change.member if m.id == change.replaces else m for m in booking.crew]
            booking = booking.model_copy(update={"crew": crew})
        self._s.booking = booking
        self._s.status.charter = booking.crew_view(self._o.guest_page_url)
        if not same:
            old.answer = "replaced"
        self._s.answers[change.member.id] = CrewAnswer(
            crew_id=change.member.id, name=change.member.name, role=old.role
        )
        self._s.crew_version += 1
        self._s.invited_at[change.member.id] = workflow.now()
        self._book.unblock(f"crew-email:{change.replaces}")
        self._book.unblock(f"crew-declined:{change.replaces}")
        await self.email(
            old.role, change.member, "invite", tag=f"v{self._s.crew_version}" if same else ""
        )

    def bounced(self, bounce: EmailBounced) -> None:
        answer = self._s.answers.get(bounce.crew_id)
        if answer is None or answer.answer == "replaced":
            return
        self._book.block(
            f"crew-email:{bounce.crew_id}",
            f"{answer.name}'s address does not receive our mail ({bounce.kind}: {bounce.reason})",
            f"charters assign {self._wf_id} {bounce.crew_id} member.yaml "
            "(the same id with a working email, or a replacement)",
        )

    async def alert_declines(self) -> None:
        for answer in self.current():
            if answer.answer != "declined":
                self._book.unblock(f"crew-declined:{answer.crew_id}")
                continue
            self._book.block(
                f"crew-declined:{answer.crew_id}",
                f"{answer.name} ({answer.role}) declined",
                f"charters assign {self._wf_id} {answer.crew_id} replacement.yaml",
            )
            await self._steps.alert(
                f"declined:{self._s.round}:{self._s.crew_version}:{answer.crew_id}",
                f"{self._s.status.booking_ref}: {answer.name} declined",
                f"{answer.name} ({answer.role}) declined booking {self._s.status.booking_ref}. "
                f"Assign a replacement: charters assign {self._wf_id} {answer.crew_id} "
                "replacement.yaml",
            )

    def show_waiting(self) -> None:
        """`BlockedOn=crew-confirmations` while people have yet to answer (and nobody declined:
        a decline is its own block)."""
        pending = [a for a in self.pending() if a.answer == "pending"]
        if pending and not any(a.answer == "declined" for a in self.current()):
            names = ", ".join(a.name for a in pending)
            self._book.block(
                contract.BLOCKED_CREW_CONFIRMATIONS,
                f"waiting for {names}",
                f"nothing to run: they answer by their link, or `charters confirm {self._wf_id} "
                "<crew-id> --by-operator <you>`",
            )
        else:
            self._book.unblock(contract.BLOCKED_CREW_CONFIRMATIONS)

    # ---- emails -----------------------------------------------------------------------------

    async def invite_all(self, kind: EmailKind) -> None:
        """One email per member, side by side; one blocked address holds only its own seat."""
        booking = self._s.booking
        assert booking is not None
        members = [(r, m) for r, m in booking.members if self._s.answers[m.id].answer != "replaced"]
        await asyncio.gather(*(self.email(role, m, kind) for role, m in members))

    async def email(self, role: Role, member: CrewMember, kind: EmailKind, tag: str = "") -> None:
        booking = self._s.booking
        assert booking is not None
        key = f"{kind}:{self._s.round}:{member.id}" + (f":{tag}" if tag else "")
        if key in self._s.emails:
            return
        request = CrewEmailRequest(
            idempotency_key=f"{self._wf_id}:{key}",
            workflow_id=self._wf_id,
            member=member,
            role=role,
            charter=booking.crew_view(self._o.guest_page_url),
            kind=kind,
            round=self._s.round,
        )
        sent = await self._steps.run(
            f"email:{member.id}",
            lambda: self._steps.activity(EmailActivities.send_crew_email, request),
            block_on=f"crew-email:{member.id}",
            skippable="the member is then not emailed; confirm for them by phone",
        )
        if sent is not None:
            self._s.emails[key] = sent.message_id
            if member.id not in self._s.notified:
                self._s.notified.append(member.id)

    # ---- clocks -----------------------------------------------------------------------------

    def next_reminder(self, asked_at: datetime) -> datetime | None:
        dues = [self._reminder_due(a, asked_at) for a in self.pending()]
        return min((d for d in dues if d is not None), default=None)

    async def remind_due(self, asked_at: datetime) -> None:
        booking = self._s.booking
        assert booking is not None
        members = {m.id: (r, m) for r, m in booking.members}
        now = workflow.now()
        for answer in self.pending():
            due = self._reminder_due(answer, asked_at)
            if due is None or due > now or answer.crew_id not in members:
                continue
            answer.reminders_sent += 1
            role, member = members[answer.crew_id]
            await self.email(role, member, "reminder", tag=f"r{answer.reminders_sent}")

    def _reminder_due(self, answer: CrewAnswer, asked_at: datetime) -> datetime | None:
        """On the member's own clock (a replacement's starts at their invite); none once they
        answered or had max_reminders."""
        if answer.answer != "pending" or answer.reminders_sent >= self._o.max_reminders:
            return None
        since = max(asked_at, self._s.invited_at.get(answer.crew_id, asked_at))
        every = timedelta(hours=self._o.reminder_after_hours)
        return since + every * (answer.reminders_sent + 1)

    def deadline(self) -> datetime:
        assert self._s.booking is not None
        return self._s.booking.starts_at_utc - timedelta(
            hours=self._o.confirm_deadline_hours_before
        )

    async def escalate_deadline(self) -> None:
        names = ", ".join(a.name for a in self.pending())
        self._s.escalated_round = self._s.round
        self._book.block(
            contract.BLOCKED_CREW_DEADLINE,
            f"confirmation deadline passed; still waiting on {names}",
            f"charters confirm {self._wf_id} <crew-id> --by-operator <you>, or "
            f"charters assign {self._wf_id} <crew-id> replacement.yaml",
        )
        await self._steps.alert(
            f"deadline:{self._s.round}",
            f"{self._s.status.booking_ref}: crew not confirmed by the deadline",
            f"Still waiting on {names}. Confirm for them or assign replacements.",
        )


def _wanted(answer: CrewConfirmation) -> Literal["accepted", "declined"]:
    return "accepted" if answer.decision == "accept" else "declined"
