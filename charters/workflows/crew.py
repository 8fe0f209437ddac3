"""The crew side of a booking: who is aboard, what each answered, the emails each is owed
(invitation, reminders, the day-of reminder), declines and the deadline; a seat changing hands
is `seat_changes.py`'s, bounces `bounces.py`'s, the summary `finalizing.py`'s. Owns `state.crew`
but for those parts. Every email is an errand of its own: a
member whose address is refused blocks only their own seat."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial
from typing import Literal, NamedTuple

from charters import contract
from charters.contract import Activity
from charters.models import (
    Booking,
    BookingOptions,
    BookingState,
    CrewAnswer,
    CrewConfirmation,
    CrewEmailRequest,
    CrewMember,
    EmailKind,
    EmailSent,
    Role,
    Verdict,
)
from charters.workflows.bookkeeping import Bookkeeping
from charters.workflows.errands import Errands
from charters.workflows.failures import refuse
from charters.workflows.steps import StepRunner
from charters.workflows.texts import Texts

SKIP_EMAIL = "the member is then not emailed; confirm for them by phone"


class CrewEmail(NamedTuple):
    """One email a member is owed: its key (unique per booking, so a repeat is found) and what
    blocks if it fails for good."""

    key: str
    role: Role
    member: CrewMember
    kind: EmailKind
    block_on: str


class CrewWaits:
    def __init__(
        self,
        state: BookingState,
        steps: StepRunner,
        book: Bookkeeping,
        options: BookingOptions,
        workflow_id: str,
        errands: Errands,
        texts: Texts,
    ) -> None:
        self._state = state
        self._crew = state.crew
        self._steps = steps
        self._book = book
        self._options = options
        self._workflow_id = workflow_id
        self._errands = errands
        self._texts = texts

    # ---- who is aboard ----------------------------------------------------------------------

    def seat(self, booking: Booking) -> None:
        for role, member in booking.members:
            if member.id not in self._crew.answers:
                self._crew.answers[member.id] = CrewAnswer(
                    crew_id=member.id, name=member.name, role=role
                )

    def current(self) -> list[CrewAnswer]:
        booking = self._state.booking
        if booking is None:
            return []
        return [self._crew.answers[m.id] for _, m in booking.members if m.id in self._crew.answers]

    def pending(self) -> list[CrewAnswer]:
        return [answer for answer in self.current() if answer.answer != "accepted"]

    def accepted(self) -> list[tuple[Role, CrewMember]]:
        return [
            (role, member)
            for role, member in self._state.validated.members
            if self._crew.answers[member.id].answer == "accepted"
        ]

    def key(self) -> str:
        """Which crew a summary was sent for: the round and the crew's version."""
        return f"{self._state.round}:{self._crew.version}"

    # ---- answers ----------------------------------------------------------------------------

    def check_answer(self, answer: CrewConfirmation) -> None:
        """The validator of `crew_confirmation`: refuse what the workflow would ignore."""
        self.check_open()
        if not self._crew.answers:
            return  # not validated yet: the handler holds it until the booking is
        known = self._crew.answers.get(answer.crew_id)
        if known is None:
            raise refuse(contract.REFUSED_UNKNOWN_MEMBER, f"{answer.crew_id} is not on this crew")
        if known.answer == "replaced":
            raise refuse(
                contract.REFUSED_REPLACED,
                f"{known.name} was replaced on this charter; this invitation no longer counts",
            )
        if answer.round is not None and answer.round != self._state.round:
            raise refuse(
                contract.REFUSED_SUPERSEDED,
                "the charter was rescheduled: this link is for the old date; use the newest email",
            )
        if known.answer == _wanted(answer):
            raise refuse(contract.REFUSED_ALREADY_ANSWERED, f"already recorded: {known.answer}")

    def record_answer(self, answer: CrewConfirmation) -> Verdict:
        known = self._crew.answers[answer.crew_id]
        known.answer, known.by = _wanted(answer), answer.by
        if known.answer == "accepted":
            on = f"crew-email:{answer.crew_id}"
            if not self._steps.waiting(on):  # a bounce shown; an email that waits stays shown
                self._book.unblock(on)
        return Verdict(
            recorded=True,
            code="recorded",
            message=f"{known.name}: {known.answer}"
            + (", thank you" if known.answer == "accepted" else ""),
        )

    def check_open(self) -> None:
        if self._state.requests.cancel is not None:
            raise refuse(contract.REFUSED_CANCELLED, "this charter was cancelled")
        if self._state.departed:
            raise refuse(contract.REFUSED_DEPARTED, "this charter has already sailed")

    # ---- what the loop keeps up -------------------------------------------------------------

    def invitations(self) -> list[CrewEmail]:
        """The invitation each seated member is owed for this round and their seat's version
        (a reschedule or a new address asks again). "Rescheduled" goes to a member asked for the
        old date; one the date moved before they were asked gets a plain invitation."""
        owed = []
        for role, member in self._state.validated.members:
            if self._crew.answers[member.id].answer == "replaced":
                continue
            kind: EmailKind = "rescheduled" if self._asked_before(member.id) else "invite"
            version = self._crew.seat_versions.get(member.id, 1)
            key = f"{kind}:{self._state.round}:{member.id}" + (
                f":v{version}" if version > 1 else ""
            )
            if key not in self._crew.emails:
                owed.append(CrewEmail(key, role, member, kind, f"crew-email:{member.id}"))
        return owed

    def _asked_before(self, member_id: str) -> bool:
        """An invitation of an earlier round went out to them (or may have: its send began)."""
        this_round = str(self._state.round)
        return any(key.split(":")[1] != this_round for key in self._crew.asked.get(member_id, []))

    def invitations_settled(self) -> bool:
        """Every invitation of this round sent or waiting for a person (`notifying` is over)."""
        return all(self._book.blocked(email.block_on) for email in self.invitations())

    def send_invitations(self) -> None:
        for email in self.invitations():
            self._errands.start(email.key, partial(self.send, email))
            self._texts.start(email.key, email.role, email.member, email.kind)

    def due_reminders(self, now: datetime) -> list[CrewEmail]:
        due = []
        members = {m.id: (role, m) for role, m in self._state.validated.members}
        for answer in self.pending():
            at = self._reminder_due(answer)
            if at is None or at > now or answer.crew_id not in members:
                continue
            role, member = members[answer.crew_id]
            key = f"reminder:{self._state.round}:{member.id}:r{answer.reminders_sent + 1}"
            due.append(CrewEmail(key, role, member, "reminder", f"crew-reminder:{member.id}"))
        return due

    def next_reminder(self, now: datetime) -> datetime | None:
        """The first reminder due after `now`: one already due is an errand (perhaps blocked
        for a person), and must not hide the other members' clocks."""
        dues = [self._reminder_due(answer) for answer in self.pending()]
        return min((due for due in dues if due is not None and due > now), default=None)

    def _reminder_due(self, answer: CrewAnswer) -> datetime | None:
        """On the member's own clock (a replacement's starts at their invite); none once they
        answered or had max_reminders."""
        if answer.answer != "pending" or answer.reminders_sent >= self._options.max_reminders:
            return None
        asked_at = self._state.clocks.asked_at
        if asked_at is None:
            return None
        since = max(asked_at, self._crew.invited_at.get(answer.crew_id, asked_at))
        every = timedelta(hours=self._options.reminder_after_hours)
        return since + every * (answer.reminders_sent + 1)

    def send_reminders(self, now: datetime) -> None:
        for email in self.due_reminders(now):
            self._errands.start(email.key, partial(self._remind, email))
            self._texts.start(email.key, email.role, email.member, email.kind)

    async def _remind(self, email: CrewEmail) -> None:
        await self.send(email)
        answer = self._crew.answers[email.member.id]
        answer.reminders_sent = max(answer.reminders_sent, int(email.key.rsplit(":r", 1)[1]))

    def day_of_emails(self) -> list[CrewEmail]:
        return [
            CrewEmail(
                f"day-of:{self._state.round}:{member.id}",
                role,
                member,
                "day-of",
                f"crew-day-of:{member.id}",
            )
            for role, member in self.accepted()
            if f"day-of:{self._state.round}:{member.id}" not in self._crew.emails
        ]

    def send_day_of(self) -> None:
        emails = self.day_of_emails()
        if emails:
            self._book.step("crew_day_of", "running")
        for email in emails:
            self._errands.start(email.key, partial(self._day_of, email))
            self._texts.start(email.key, email.role, email.member, email.kind)

    async def _day_of(self, email: CrewEmail) -> None:
        await self.send(email, step="crew_day_of")
        if not self.day_of_emails():
            self._book.step("crew_day_of", "done")

    async def send(
        self, email: CrewEmail, step: str | None = None, only_if_sent: list[str] | None = None
    ) -> None:
        """One email, once per key; blocks only its own seat when SES refuses it for good."""
        if email.key in self._crew.emails:
            return
        if email.kind in ("invite", "rescheduled"):
            asked = self._crew.asked.setdefault(email.member.id, [])
            if email.key not in asked:
                asked.append(email.key)
        request = CrewEmailRequest(
            idempotency_key=f"{self._workflow_id}:{email.key}",
            workflow_id=self._workflow_id,
            member=email.member,
            role=email.role,
            charter=self._state.validated.crew_view(self._state.guest_page_url),
            kind=email.kind,
            round=self._state.round,
            only_if_sent=[f"{self._workflow_id}:{key}" for key in only_if_sent or []],
            brand=self._state.validated.brand,
        )
        sent = await self._steps.run(
            step or f"email:{email.member.id}",
            Activity.SEND_CREW_EMAIL,
            request,
            EmailSent,
            block_on=email.block_on,
            about=f"{email.member.name} <{email.member.email}>",
            skippable=SKIP_EMAIL,
        )
        if sent is None:  # an operator skipped it: owed no more (no message id)
            self._crew.emails[email.key] = ""
        elif not sent.skipped:
            self._crew.emails[email.key] = sent.message_id

    def cancellation_notices(self) -> list[tuple[CrewEmail, list[str]]]:
        """The cancellation each member who was asked is owed, with the invitations that make
        them owed it: the notice goes only if one of those was sent (the email ledger knows,
        even when the workflow never heard back)."""
        members = {m.id: (role, m) for role, m in self._state.validated.members}
        notices = []
        for member_id, keys in self._crew.asked.items():
            if member_id not in members:
                continue
            role, member = members[member_id]
            email = CrewEmail(
                f"cancelled:{self._state.round}:{member_id}",
                role,
                member,
                "cancelled",
                f"crew-cancel:{member_id}",
            )
            notices.append((email, keys))
        return notices

    # ---- what people must act on -------------------------------------------------------------

    def show_declines(self) -> None:
        for answer in self.current():
            if answer.answer != "declined":
                self._book.unblock(f"crew-declined:{answer.crew_id}")
                continue
            self._book.block(
                f"crew-declined:{answer.crew_id}",
                f"{answer.name} ({answer.role}) declined",
                f"charters assign {self._workflow_id} {answer.crew_id} replacement.yaml",
            )
            self._steps.alert(
                f"declined:{self._state.round}:{self._crew.version}:{answer.crew_id}",
                f"{self._state.status.booking_ref}: {answer.name} declined",
                f"{answer.name} ({answer.role}) declined booking "
                f"{self._state.status.booking_ref}. Assign a replacement: charters assign "
                f"{self._workflow_id} {answer.crew_id} replacement.yaml",
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
                f"nothing to run: they answer by their link, or `charters confirm "
                f"{self._workflow_id} <crew-id> --by-operator <you>`",
            )
        else:
            self._book.unblock(contract.BLOCKED_CREW_CONFIRMATIONS)

    def deadline(self) -> datetime:
        return self._state.validated.starts_at_utc - timedelta(
            hours=self._options.confirm_deadline_hours_before
        )

    def deadline_due(self) -> bool:
        return bool(self.pending()) and self._state.clocks.escalated_round != self._state.round

    def escalate_deadline(self) -> None:
        names = ", ".join(a.name for a in self.pending())
        self._state.clocks.escalated_round = self._state.round
        self._book.block(
            contract.BLOCKED_CREW_DEADLINE,
            f"confirmation deadline passed; still waiting on {names}",
            f"charters confirm {self._workflow_id} <crew-id> --by-operator <you>, or "
            f"charters assign {self._workflow_id} <crew-id> replacement.yaml",
        )
        self._steps.alert(
            f"deadline:{self._state.round}",
            f"{self._state.status.booking_ref}: crew not confirmed by the deadline",
            f"Still waiting on {names}. Confirm for them or assign replacements.",
        )

    def new_round(self) -> None:
        """A new date: everyone who is still aboard is asked again."""
        self._crew.invited_at.clear()
        for answer in self._crew.answers.values():
            if answer.answer != "replaced":
                answer.answer, answer.by, answer.reminders_sent = "pending", None, 0


def _wanted(answer: CrewConfirmation) -> Literal["accepted", "declined"]:
    return "accepted" if answer.decision == "accept" else "declined"
