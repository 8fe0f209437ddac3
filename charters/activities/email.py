"""Email through AWS SES v2. SES has no idempotency token, so every send goes through the
effect ledger keyed on workflow id + step + recipient."""

from __future__ import annotations

import time
from typing import Any

from temporalio import activity

from charters import magic_links
from charters.activities.ledger import EffectLedger
from charters.activities.secrets import SecretReader
from charters.models import (
    CaptainSummaryRequest,
    CrewEmailRequest,
    EmailSent,
    GuestEmailRequest,
    OperationsAlertRequest,
)
from charters.pages import render

SUBJECTS = {
    "invite": "Can you crew {ref} on {date}?",
    "reminder": "Reminder: can you crew {ref} on {date}?",
    "rescheduled": "Rescheduled: can you crew {ref} on {date}?",
    "cancelled": "Cancelled: charter {ref} on {date}",
    "day-of": "Today: charter {ref}, meet at {location}",
}
GUEST_SUBJECTS = {
    "reminder": "Your charter on {date}: see you soon",
    "thank-you": "Thank you for sailing with us: your photos",
}


class EmailActivities:
    def __init__(
        self,
        sesv2: Any,
        ledger: EffectLedger,
        secrets: SecretReader,
        *,
        mail_from: str,
        operations_email: str,
        confirm_base_url: str,
        magic_key_secret_id: str,
        magic_link_ttl_seconds: int,
    ) -> None:
        self._ses = sesv2
        self._ledger = ledger
        self._secrets = secrets
        self._from = mail_from
        self._ops = operations_email
        self._confirm_base = confirm_base_url.rstrip("/")
        self._magic_secret = magic_key_secret_id
        self._ttl = magic_link_ttl_seconds

    def _send(
        self,
        key: str,
        to: str,
        subject: str,
        html: str,
        attachments: list[dict[str, Any]] | None = None,
    ) -> EmailSent:
        """`attachments`: SES v2 Simple-message attachments (moto accepts and drops them)."""

        def send() -> str:
            simple: dict[str, Any] = {
                "Subject": {"Data": subject, "Charset": "UTF-8"},
                "Body": {"Html": {"Data": html, "Charset": "UTF-8"}},
            }
            if attachments:
                simple["Attachments"] = attachments
            answer = self._ses.send_email(
                FromEmailAddress=self._from,
                Destination={"ToAddresses": [to]},
                Content={"Simple": simple},
            )
            return str(answer["MessageId"])

        message_id, duplicate = self._ledger.once(f"email:{key}", "email", send)
        return EmailSent(message_id=message_id, duplicate=duplicate)

    def magic_link(self, workflow_id: str, crew_id: str, round_: int) -> str:
        key = self._secrets.get(self._magic_secret).encode()
        token = magic_links.sign(
            key,
            magic_links.MagicLink(workflow_id, crew_id, int(time.time()) + self._ttl, round_),
        )
        return f"{self._confirm_base}/c/{token}"

    @activity.defn(name="send_crew_email")
    def send_crew_email(self, req: CrewEmailRequest) -> EmailSent:
        """Crew-facing: built from the money-free CrewView plus the member's own rate."""
        link = self.magic_link(req.workflow_id, req.member.id, req.round)
        html = render(
            "crew_email.html",
            member=req.member,
            role=req.role,
            charter=req.charter,
            kind=req.kind,
            accept_url=f"{link}?d=accept",
            decline_url=f"{link}?d=decline",
        )
        subject = SUBJECTS[req.kind].format(
            ref=req.charter.booking_ref,
            date=req.charter.starts_at.date().isoformat(),
            location=req.charter.location,
        )
        return self._send(req.idempotency_key, req.member.email, subject, html)

    @activity.defn(name="alert_operations")
    def alert_operations(self, req: OperationsAlertRequest) -> EmailSent:
        return self._send(
            req.idempotency_key, self._ops, req.subject, render("ops_alert.html", body=req.body)
        )

    @activity.defn(name="send_captain_summary")
    def send_captain_summary(self, req: CaptainSummaryRequest) -> EmailSent:
        """The only email with financials; it goes to the captain alone."""
        html = render(
            "captain_summary.html",
            booking=req.booking,
            charter=req.charter,
            confirmations=req.confirmations,
            money=req.booking.financials(),
        )
        subject = f"Confirmed: {req.booking.booking_ref} on {req.booking.charter_date.isoformat()}"
        return self._send(req.idempotency_key, req.booking.captain.email, subject, html)

    @activity.defn(name="send_guest_email")
    def send_guest_email(self, req: GuestEmailRequest) -> EmailSent:
        """Guest-facing: built from the money-free CrewView; a reminder carries the `.ics`."""
        html = render(
            "guest_email.html",
            charter=req.charter,
            kind=req.kind,
            hours_before=req.hours_before,
            album_url=req.album_url,
        )
        subject = (
            GUEST_SUBJECTS[req.kind].format(date=req.charter.starts_at.date().isoformat())
            + f" ({req.charter.booking_ref})"
        )
        attachments = None
        if req.kind == "reminder":
            from charters.activities.guest_page import ics_calendar

            attachments = [
                {
                    "RawContent": ics_calendar(req.charter).encode(),
                    "FileName": f"charter-{req.charter.booking_ref}.ics",
                    "ContentType": "text/calendar",
                }
            ]
        return self._send(req.idempotency_key, req.guest_email, subject, html, attachments)
