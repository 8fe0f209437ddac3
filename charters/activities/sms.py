"""Crew texts through Amazon SNS (Publish to a phone number, transactional). SNS has no
idempotency token either, so each text goes through the effect ledger as email does, under a key
of its own (`sms:`). A number on SNS's opt-out list is not texted, and the result says so."""

from __future__ import annotations

import time
import unicodedata
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from temporalio import activity

from charters import errors, magic_links
from charters.activities.guest_page import on_brand
from charters.activities.ledger import EffectLedger
from charters.activities.secrets import SecretReader
from charters.aws_errors import aws_errors
from charters.brands import Brand, BrandBook, BrandError
from charters.models import CrewSmsRequest, CrewView, SmsSent

FIXES = {
    "InvalidParameter": "correct this crew member's phone number on the roster (E.164, e.g. "
    "+16195550100) and assign them again, or retry the step to skip their texts",
    "AuthorizationError": "grant the worker's role sns:Publish to phone numbers and "
    "sns:CheckIfPhoneNumberIsOptedOut",
    "OptedOut": "the number opted out of texts: the member answers by email",
    "KMSDisabled": "enable the KMS key of the account's SNS SMS settings",
}
DEFAULT_FIX = (
    "check the account's SNS SMS settings (sandbox, spend limit, origination identity "
    "CHARTERS_SMS_ORIGINATION_IDENTITY) and the worker's SNS permissions"
)
MAX_SEGMENTS = 2

# GSM 03.38: the basic set costs one septet, the extension table two.
GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENDED = set("^{}\\[~]|€")


def sms_segments(text: str) -> int:
    """Segments SNS bills for `text`: GSM-7 160 septets in one, 153 per part when split; any
    other character makes it UCS-2, 70 in one, 67 per part."""
    if all(c in GSM_BASIC or c in GSM_EXTENDED for c in text):
        septets = sum(2 if c in GSM_EXTENDED else 1 for c in text)
        return 1 if septets <= 160 else -(-septets // 153)
    units = len(text.encode("utf-16-le")) // 2
    return 1 if units <= 70 else -(-units // 67)


def gsm_text(text: str) -> str:
    """Accents and typographic quotes folded to GSM-7 where they can be, so one curly
    apostrophe in a name does not halve what fits in a segment."""
    folded = text.translate({0x2019: "'", 0x2018: "'", 0x201C: '"', 0x201D: '"', 0x2013: "-"})
    out = []
    for char in folded:
        if char in GSM_BASIC or char in GSM_EXTENDED:
            out.append(char)
            continue
        plain = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
        out.append(plain if plain else char)
    return "".join(out)


def _when(charter: CrewView) -> str:
    local = charter.starts_at.replace(tzinfo=ZoneInfo(charter.timezone))
    return f"{local:%a %b} {local.day} {local:%-I:%M%p}".replace("AM", "am").replace("PM", "pm")


def _time(value: datetime, zone: str) -> str:
    local = value.replace(tzinfo=ZoneInfo(zone))
    return f"{local:%-I:%M%p}".replace("AM", "am").replace("PM", "pm")


def sms_text(req: CrewSmsRequest, brand: Brand, link: str) -> str:
    """The text for one kind, in at most two segments: the long form first, then without the
    meeting point, then without the brand's name (the link is never cut)."""
    c = req.charter
    name = brand.look.display_name

    def compose(with_place: bool, with_name: bool) -> str:
        who = f"{name}: " if with_name else ""
        at = f" at {c.location}" if with_place else ""
        role = "captain" if req.role == "captain" else "crew"
        match req.kind:
            case "invite":
                body = f"can you {role} charter {c.booking_ref} on {_when(c)}{at}? Answer: {link}"
            case "reminder":
                body = f"reminder, we need your answer for charter {c.booking_ref} on {_when(c)}"
                body += f"{at}: {link}"
            case "rescheduled":
                body = f"charter {c.booking_ref} moved to {_when(c)}{at}. Can you still {role}? "
                body += link
            case "cancelled":
                body = f"charter {c.booking_ref} on {_when(c)} is cancelled. No need to come in."
            case "released":
                body = f"you are no longer needed on charter {c.booking_ref} on {_when(c)}: "
                body += "someone else took your seat. No need to come in."
            case "day-of":
                body = f"today {_time(c.starts_at, c.timezone)}, charter {c.booking_ref}{at}."
                body += f" Guest page: {c.guest_page_url}"
        text = gsm_text(f"{req.member.first_name}, {who}{body}")
        return text[:1].upper() + text[1:]

    for with_place, with_name in ((True, True), (False, True), (False, False)):
        text = compose(with_place, with_name)
        if sms_segments(text) <= MAX_SEGMENTS:
            return text
    return text


def ledger_key(idempotency_key: str) -> str:
    return f"sms:{idempotency_key}"


class SmsActivities:
    def __init__(
        self,
        sns: Any,
        ledger: EffectLedger,
        secrets: SecretReader,
        brands: BrandBook,
        *,
        confirm_base_url: str,
        magic_key_secret_id: str,
        magic_link_ttl_seconds: int,
        origination_identity: str | None = None,
    ) -> None:
        self._sns = sns
        self._ledger = ledger
        self._secrets = secrets
        self._brands = brands
        self._confirm_base = confirm_base_url.rstrip("/")
        self._magic_secret = magic_key_secret_id
        self._ttl = magic_link_ttl_seconds
        self._origination = origination_identity

    def short_link(self, workflow_id: str, crew_id: str, round_: int) -> str:
        """`/s/{code}`: the confirmation server opens the same page as the email's magic link."""
        key = self._secrets.get(self._magic_secret).encode()
        link = magic_links.MagicLink(workflow_id, crew_id, int(time.time()) + self._ttl, round_)
        return f"{self._confirm_base}/s/{magic_links.short_code(key, link)}"

    def attributes(self) -> dict[str, Any]:
        """Transactional (delivery over cost), from the configured origination identity: an
        E.164 number as the origination number, anything else as the sender ID."""
        attrs: dict[str, Any] = {
            "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}
        }
        if self._origination:
            name = (
                "AWS.MM.SMS.OriginationNumber"
                if self._origination.startswith("+")
                else "AWS.SNS.SMS.SenderID"
            )
            attrs[name] = {"DataType": "String", "StringValue": self._origination}
        return attrs

    @activity.defn(name="send_crew_sms")
    def send_crew_sms(self, req: CrewSmsRequest) -> SmsSent:
        """One text per key, to an opted-in member with a phone. A recorded send answers as a
        duplicate; a number that opted out is not texted (`opted_out`); a failure no retry can
        fix is an operator's block naming the member (`sms:<id>`), for their texts alone."""
        member = req.member
        if not member.sms or not member.phone:
            return SmsSent(message_id="", duplicate=False, skipped=True)
        if req.only_if_sent and not any(
            self._ledger.claimed(ledger_key(k)) for k in req.only_if_sent
        ):
            return SmsSent(message_id="", duplicate=False, skipped=True)
        try:
            brand = self._brands.get(req.brand)
        except BrandError as exc:
            raise errors.needs_operator(
                str(exc), "add the brand to CHARTERS_BRANDS on every worker", subject=req.brand
            ) from None
        key = ledger_key(req.idempotency_key)
        done = self._ledger.recorded(key)
        if done is not None:
            return SmsSent(message_id=done, duplicate=True)
        about = f"sms:{member.id}"
        with aws_errors("SNS", FIXES, DEFAULT_FIX, subject=about):
            opted_out = self._sns.check_if_phone_number_is_opted_out(phoneNumber=member.phone)
        if opted_out.get("isOptedOut"):
            return SmsSent(message_id="", duplicate=False, opted_out=True)
        charter = on_brand(req.charter, brand)
        link = self.short_link(req.workflow_id, member.id, req.round)
        text = sms_text(req.model_copy(update={"charter": charter}), brand, link)

        def send() -> str:
            answer = self._sns.publish(
                PhoneNumber=member.phone, Message=text, MessageAttributes=self.attributes()
            )
            return str(answer["MessageId"])

        with aws_errors("SNS", FIXES, DEFAULT_FIX, subject=about):
            message_id, duplicate = self._ledger.once(key, "sms", send)
        return SmsSent(message_id=message_id, duplicate=duplicate, segments=sms_segments(text))
