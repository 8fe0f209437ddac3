"""Email through AWS SES v2. SES has no idempotency token, so every send goes through the
effect ledger keyed on workflow id + step + recipient."""

from __future__ import annotations

import time
from typing import Any

from temporalio import activity

from charters import contract, errors, magic_links
from charters.activities.email_text import html_to_text
from charters.activities.guest_page import on_brand, single_brand
from charters.activities.ledger import EffectLedger
from charters.activities.secrets import SecretReader
from charters.activities.ses_errors import ses_access_denied_fix
from charters.aws_errors import FixText, aws_errors
from charters.brands import Brand, BrandBook, BrandError
from charters.models import (
    CaptainSummaryRequest,
    CrewEmailRequest,
    CrewView,
    EmailSent,
    GuestEmailRequest,
    OperationsAlertRequest,
)
from charters.pages import render

# SES v2 SendEmail errors only a person can fix (SES v2 API reference, SendEmail "Errors"); a
# throttle (TooManyRequests) or a 5xx stays retryable (charters.aws_errors).
FIXES: dict[str, FixText] = {
    "MessageRejected": "correct this recipient's address (or replace the crew member); SES "
    "refuses it (suppression list, or a sandbox account sending to an unverified address)",
    "AccountSuspended": "SES sending is suspended for the account: resolve it with AWS, then "
    "retry the step",
    "SendingPaused": "sending is paused for the account or CHARTERS_SES_CONFIGURATION_SET: "
    "resume it (put-account-sending-attributes / put-configuration-set-sending-options)",
    "MailFromDomainNotVerified": "verify the MAIL FROM domain of CHARTERS_MAIL_FROM in SES",
    "NotFound": "create the configuration set named by CHARTERS_SES_CONFIGURATION_SET (the "
    "template does), or set it to the right name",
    "AccessDenied": ses_access_denied_fix,  # a sandbox recipient, or a missing grant
}
DEFAULT_FIX = "check CHARTERS_MAIL_FROM, CHARTERS_SES_CONFIGURATION_SET and the SES account"
TAG_WORKFLOW = "workflow_id"
TAG_CREW = "crew_id"
TAG_KIND = "kind"
KIND_OPS_ALERT = "ops-alert"
KIND_GUEST_PREFIX = "guest-"  # guest-reminder, guest-thank-you, guest-cancelled

SUBJECTS = {
    "invite": "Can you crew {ref} on {date}?",
    "reminder": "Reminder: can you crew {ref} on {date}?",
    "rescheduled": "Rescheduled: can you crew {ref} on {date}?",
    "cancelled": "Cancelled: charter {ref} on {date}",
    "day-of": "Today: charter {ref}, meet at {location}",
    "released": "No longer needed: charter {ref} on {date}",
}
GUEST_SUBJECTS = {
    "reminder": "Your charter on {date}: see you soon",
    "thank-you": "Thank you for sailing with us: your photos",
    "cancelled": "Your charter on {date} is cancelled",
    "moved": "Your charter page on {date} has a new address",
}


def ledger_key(idempotency_key: str) -> str:
    """The ledger's key for an email: one namespace per effect kind."""
    return f"email:{idempotency_key}"


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
        configuration_set: str | None = None,
        brands: BrandBook | None = None,
    ) -> None:
        """`brands`: every configured brand (its sender, reply-to, look and site); without it,
        every message goes from `mail_from` in the default look."""
        self._brands = brands or single_brand("unused", "guest-pages/", sender=mail_from)
        self._rebase = brands is not None
        self._ses = sesv2
        self._ledger = ledger
        self._secrets = secrets
        self._from = mail_from
        self._ops = operations_email
        self._confirm_base = confirm_base_url.rstrip("/")
        self._magic_secret = magic_key_secret_id
        self._ttl = magic_link_ttl_seconds
        self._configuration_set = configuration_set

    def brand(self, name: str | None) -> Brand:
        try:
            return self._brands.get(name)
        except BrandError as exc:
            raise errors.needs_operator(
                str(exc), "add the brand to CHARTERS_BRANDS on every worker", subject=name
            ) from None

    def _charter(self, charter: CrewView, brand: Brand) -> CrewView:
        return on_brand(charter, brand) if self._rebase else charter

    def _send(
        self,
        key: str,
        to: str,
        subject: str,
        html: str,
        tags: dict[str, str],
        about: str,
        attachments: list[dict[str, Any]] | None = None,
        brand: Brand | None = None,
    ) -> EmailSent:
        """One message, once per key: HTML and its text part, the configuration set (its event
        destination reports bounces and complaints) and tags naming the workflow and crew
        member, which SES copies into those events' `mail.tags`. `about` names the recipient in
        an operator's block (a member id or a role, never the address). `attachments`: SES v2
        Simple-message attachments (moto accepts and drops them)."""
        extra: dict[str, Any] = (
            {"ConfigurationSetName": self._configuration_set} if self._configuration_set else {}
        )
        sender = self._from if brand is None or not self._rebase else brand.sender
        if brand is not None and brand.reply_to:
            extra["ReplyToAddresses"] = [brand.reply_to]

        def send() -> str:
            simple: dict[str, Any] = {
                "Subject": {"Data": subject, "Charset": "UTF-8"},
                "Body": {
                    "Text": {"Data": html_to_text(html), "Charset": "UTF-8"},
                    "Html": {"Data": html, "Charset": "UTF-8"},
                },
            }
            if attachments:
                simple["Attachments"] = attachments
            answer = self._ses.send_email(
                FromEmailAddress=sender,
                Destination={"ToAddresses": [to]},
                Content={"Simple": simple},
                EmailTags=[{"Name": k, "Value": v} for k, v in tags.items()],
                **extra,
            )
            return str(answer["MessageId"])

        with aws_errors("SES", FIXES, DEFAULT_FIX, subject=about):
            message_id, duplicate = self._ledger.once(ledger_key(key), "email", send)
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
        """Crew-facing: built from the money-free CrewView plus the member's own rate. With
        `only_if_sent`, nothing goes unless the ledger holds a claim for one of those emails: a
        member never asked is not told of a cancellation."""
        if req.only_if_sent and not any(
            self._ledger.claimed(ledger_key(k)) for k in req.only_if_sent
        ):
            return EmailSent(message_id="", duplicate=False, skipped=True)
        brand = self.brand(req.brand)
        charter = self._charter(req.charter, brand)
        link = self.magic_link(req.workflow_id, req.member.id, req.round)
        html = render(
            "crew_email.html",
            member=req.member,
            role=req.role,
            charter=charter,
            kind=req.kind,
            accept_url=f"{link}?d=accept",
            decline_url=f"{link}?d=decline",
            look=brand.look,
        )
        subject = SUBJECTS[req.kind].format(
            ref=req.charter.booking_ref,
            date=req.charter.starts_at.date().isoformat(),
            location=req.charter.location,
        )
        tags = {TAG_WORKFLOW: req.workflow_id, TAG_CREW: req.member.id, TAG_KIND: req.kind}
        return self._send(
            req.idempotency_key,
            req.member.email,
            subject,
            html,
            tags,
            about=req.member.id,
            brand=brand,
        )

    @activity.defn(name="alert_operations")
    def alert_operations(self, req: OperationsAlertRequest) -> EmailSent:
        """Tagged with the booking's workflow (an idempotency key begins with the workflow id)
        so that a bounced alert is recorded in that booking's status."""
        workflow_id = req.idempotency_key.split(":", 1)[0]
        return self._send(
            req.idempotency_key,
            self._ops,
            req.subject,
            render("ops_alert.html", body=req.body),
            {TAG_WORKFLOW: workflow_id, TAG_KIND: KIND_OPS_ALERT},
            about="operations",
        )

    @activity.defn(name="send_captain_summary")
    def send_captain_summary(self, req: CaptainSummaryRequest) -> EmailSent:
        """The only email with financials; it goes to the captain alone."""
        brand = self.brand(req.brand)
        html = render(
            "captain_summary.html",
            booking=req.booking,
            charter=self._charter(req.charter, brand),
            confirmations=req.confirmations,
            money=req.booking.financials(),
            look=brand.look,
        )
        subject = f"Confirmed: {req.booking.booking_ref} on {req.booking.charter_date.isoformat()}"
        tags = {
            TAG_WORKFLOW: contract.workflow_id_for(req.booking.booking_ref),
            TAG_CREW: req.booking.captain.id,
            TAG_KIND: "captain-summary",
        }
        return self._send(
            req.idempotency_key,
            req.booking.captain.email,
            subject,
            html,
            tags,
            about=req.booking.captain.id,
            brand=brand,
        )

    @activity.defn(name="send_guest_email")
    def send_guest_email(self, req: GuestEmailRequest) -> EmailSent:
        """Guest-facing: built from the money-free CrewView in the brand's look, linking to the
        brand's page; a reminder carries the `.ics`; `moved` tells the new page's URL."""
        brand = self.brand(req.brand)
        charter = self._charter(req.charter, brand)
        html = render(
            "guest_email.html",
            charter=charter,
            kind=req.kind,
            hours_before=req.hours_before,
            album_url=req.album_url,
            moved_from=req.moved_from,
            look=brand.look,
        )
        subject = (
            GUEST_SUBJECTS[req.kind].format(date=charter.starts_at.date().isoformat())
            + f" ({charter.booking_ref})"
        )
        attachments = None
        if req.kind == "reminder":
            from charters.activities.guest_page import ics_calendar

            attachments = [
                {
                    "RawContent": ics_calendar(charter, brand.look.display_name).encode(),
                    "FileName": f"charter-{charter.booking_ref}.ics",
                    "ContentType": "text/calendar",
                }
            ]
        tags = {
            TAG_WORKFLOW: contract.workflow_id_for(charter.booking_ref),
            TAG_KIND: f"{KIND_GUEST_PREFIX}{req.kind}",
        }
        return self._send(
            req.idempotency_key,
            req.guest_email,
            subject,
            html,
            tags,
            "guest",
            attachments,
            brand=brand,
        )
