"""Crew emails that bounced. For good: the member's seat blocks with the fix (a working address or
a replacement) and operations are told once per member and crew version. For now (a full
mailbox): the bounced email goes again later under a key of its own, a few times, before the
seat blocks like a permanent bounce. Owns `crew.transient` and `crew.resends`."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial

from temporalio import workflow

from charters.models import (
    BookingOptions,
    BookingState,
    CrewAnswer,
    EmailBounced,
    EmailKind,
    Resend,
)
from charters.workflows.bookkeeping import Bookkeeping
from charters.workflows.crew import CrewEmail, CrewWaits
from charters.workflows.errands import Errands
from charters.workflows.steps import StepRunner


class CrewBounces:
    def __init__(
        self,
        state: BookingState,
        steps: StepRunner,
        book: Bookkeeping,
        options: BookingOptions,
        workflow_id: str,
        errands: Errands,
        crew: CrewWaits,
    ) -> None:
        self._state = state
        self._crew_state = state.crew
        self._steps = steps
        self._book = book
        self._options = options
        self._workflow_id = workflow_id
        self._errands = errands
        self._crew = crew

    def bounced(self, bounce: EmailBounced) -> None:
        """SES says the member's address does not receive our mail."""
        answer = self._crew_state.answers.get(bounce.crew_id or "")
        if answer is None or answer.answer == "replaced":
            return
        if bounce.transient and self._later(answer, bounce):
            return
        fix = (
            f"charters assign {self._workflow_id} {bounce.crew_id} member.yaml "
            "(the same id with a working email, or a replacement)"
        )
        reason = (
            f"{answer.name}'s address does not receive our mail ({bounce.kind}: {bounce.reason})"
            + (" after every send again" if bounce.transient else "")
        )
        self._book.block(f"crew-email:{bounce.crew_id}", reason, fix)
        self._steps.alert(
            f"bounce:{self._crew_state.version}:{bounce.crew_id}",
            f"{self._state.status.booking_ref}: {answer.name} did not get our email",
            f"{reason}.\nFix: {fix}",
        )

    def forget(self, member_id: str) -> None:
        """A member replaced (or given a new address): their bounces no longer count."""
        self._crew_state.transient.pop(member_id, None)
        self._crew_state.resends = [
            resend for resend in self._crew_state.resends if resend.member_id != member_id
        ]

    def send_due(self, now: datetime) -> None:
        """Each email due to go again, as an errand of its own."""
        for resend in self._crew_state.resends:
            if resend.at <= now:
                self._errands.start(resend.key, partial(self._send_again, resend))

    def next_due(self, now: datetime) -> datetime | None:
        return min(
            (resend.at for resend in self._crew_state.resends if resend.at > now), default=None
        )

    def _later(self, answer: CrewAnswer, bounce: EmailBounced) -> bool:
        """Noted, and the bounced email goes again after `transient_bounce_retry_hours`. False
        once the member's `transient_bounce_retries` are spent."""
        crew = self._crew_state
        seen = crew.transient.setdefault(answer.crew_id, [])
        if bounce.message_id and bounce.message_id in seen:
            return True  # SNS and SQS deliver at least once
        seen.append(bounce.message_id or "")
        tries = len(seen)
        if tries > self._options.transient_bounce_retries:
            return False
        asked = crew.asked.get(answer.crew_id) or []
        bounced = next(
            (key for key, sent in crew.emails.items() if sent == bounce.message_id),
            None if bounce.message_id else (asked[-1] if asked else None),
        )
        note = (
            f"{answer.name}'s mailbox did not take our email for now "
            f"({bounce.kind}: {bounce.reason})"
        )
        if bounced is None:  # not a crew email (the captain's summary): nothing to send again
            self._book.note(note)
            return True
        at = workflow.now() + timedelta(hours=self._options.transient_bounce_retry_hours)
        key = f"{bounced.split(':resend', 1)[0]}:resend{tries}"
        crew.resends.append(
            Resend(member_id=answer.crew_id, key=key, round=self._state.round, at=at)
        )
        self._book.note(
            f"{note}; sent again at {at:%Y-%m-%d %H:%M} UTC "
            f"(try {tries} of {self._options.transient_bounce_retries})"
        )
        return True

    async def _send_again(self, resend: Resend) -> None:
        """The email of a transient bounce, unless it no longer counts (a new date, a member
        replaced, an invitation or reminder already answered)."""
        members = {m.id: (role, m) for role, m in self._state.validated.members}
        answer = self._crew_state.answers.get(resend.member_id)
        kind: EmailKind = resend.key.split(":", 1)[0]  # type: ignore[assignment]
        asks = kind in ("invite", "rescheduled", "reminder")
        if (
            resend.round == self._state.round
            and resend.member_id in members
            and answer is not None
            and not (asks and answer.answer != "pending")
        ):
            role, member = members[resend.member_id]
            await self._crew.send(
                CrewEmail(resend.key, role, member, kind, f"crew-email:{member.id}")
            )
        if resend in self._crew_state.resends:
            self._crew_state.resends.remove(resend)
