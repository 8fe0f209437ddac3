"""The crew's texts (SMS through SNS), beside their emails. A member who opted in to SMS and has
a phone gets a text with each invitation, reminder and day-of email, and the cancellation notice
when they were texted an invitation. Each text is an errand of its own under its own key
(`sms:<email key>`), so a text that fails for good blocks only that member's texts
(`crew-sms:<id>`, skippable), never their email or the booking; and an email that blocks never
holds a text. A number on SNS's opt-out list is not texted and `status` says so. Owns
`state.texts`."""

from __future__ import annotations

from typing import Literal

from charters.contract import Activity
from charters.models import (
    BookingState,
    CrewMember,
    CrewSmsRequest,
    EmailKind,
    Role,
    SmsSent,
)
from charters.workflows.bookkeeping import Bookkeeping
from charters.workflows.errands import Errands
from charters.workflows.steps import StepRunner

SKIP_SMS = "the member is then not texted; they still have the email"

TextShown = Literal["sent", "opted-out", "blocked"]


def texted(member: CrewMember) -> bool:
    """Only a member who opted in and has a number is texted (the activity says the same; the
    workflow checks first so that a booking without SMS members schedules no SMS step)."""
    return member.sms and member.phone is not None


class Texts:
    def __init__(
        self,
        state: BookingState,
        steps: StepRunner,
        book: Bookkeeping,
        workflow_id: str,
        errands: Errands,
    ) -> None:
        self._state = state
        self._texts = state.texts
        self._steps = steps
        self._book = book
        self._workflow_id = workflow_id
        self._errands = errands

    def start(self, key: str, role: Role, member: CrewMember, kind: EmailKind) -> None:
        """The text that goes with the crew email `key`, as an errand of its own (none once it
        went or was given up: a done errand restarted every loop would wake the loop forever)."""
        text_key = f"sms:{key}"
        if not texted(member) or text_key in self._texts.sent:
            return
        self._errands.start(
            text_key, lambda: self.send(text_key, role, member, kind, step=f"sms:{member.id}")
        )

    async def send(
        self,
        key: str,
        role: Role,
        member: CrewMember,
        kind: EmailKind,
        step: str,
        only_if_sent: list[str] | None = None,
    ) -> None:
        """One text, once per key (the effect ledger dedups a retried send)."""
        if key in self._texts.sent or not texted(member):
            return
        if kind in ("invite", "rescheduled"):
            asked = self._texts.asked.setdefault(member.id, [])
            if key not in asked:
                asked.append(key)
        request = CrewSmsRequest(
            idempotency_key=self.idempotency_key(key),
            workflow_id=self._workflow_id,
            member=member,
            role=role,
            charter=self._state.validated.crew_view(self._state.guest_page_url),
            kind=kind,
            round=self._state.round,
            brand=self._state.validated.brand,
            only_if_sent=only_if_sent or [],
        )
        sent = await self._steps.run(
            step,
            Activity.SEND_CREW_SMS,
            request,
            SmsSent,
            block_on=f"crew-sms:{member.id}",
            about=f"a text to {member.name}",
            skippable=SKIP_SMS,
            # A regular activity: its result is an event of its own, so a text that blocks
            # upserts BlockedOn at a point a replay meets the same way. As a local step its
            # failure resolved among the emails' local results, and the replay ordered the
            # stage's and the block's upserts differently (the replay gate caught it).
            local=False,
        )
        if sent is None:  # an operator skipped it: owed no more
            self._texts.sent[key] = ""
            return
        self._texts.sent[key] = sent.message_id
        if sent.opted_out:
            if self._texts.shown.get(member.id) != "opted-out":
                self._book.note(
                    f"{member.name}'s number opted out of texts (SNS): they get email only"
                )
            self._texts.shown[member.id] = "opted-out"
        elif sent.message_id:
            self._texts.shown[member.id] = "sent"

    def idempotency_key(self, key: str) -> str:
        return f"{self._workflow_id}:{key}"

    async def notice(
        self, key: str, role: Role, member: CrewMember, kind: EmailKind, step: str
    ) -> None:
        """The text of a notice (a cancel, a release from the crew) that goes with the crew
        email `key`, only to a member who was texted an invitation: `only_if_sent` names those
        texts, and the ledger knows which went, even when the workflow never heard back."""
        asked = self._texts.asked.get(member.id)
        if not asked:
            return
        only_if_sent = [self.idempotency_key(k) for k in asked]
        await self.send(f"sms:{key}", role, member, kind, step, only_if_sent)

    def start_notice(self, key: str, role: Role, member: CrewMember, kind: EmailKind) -> None:
        """`notice` as an errand of its own, started only while it is owed."""
        text_key = f"sms:{key}"
        if not texted(member) or text_key in self._texts.sent:
            return
        if not self._texts.asked.get(member.id):
            return
        step = f"sms:{member.id}"
        self._errands.start(text_key, lambda: self.notice(key, role, member, kind, step))

    def shown(self, crew_id: str) -> TextShown | None:
        """What `status` shows of a member's texts: a block for a person first."""
        if self._book.blocked(f"crew-sms:{crew_id}"):
            return "blocked"
        return self._texts.shown.get(crew_id)  # type: ignore[return-value]
