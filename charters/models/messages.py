"""What the workflow and its activities send each other."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

from charters.models.booking import (
    Booking,
    CrewMember,
    CrewView,
    EmailKind,
    GuestEmailKind,
    Role,
)
from charters.models.people import CrewAnswer


class CalendarEntryRequest(BaseModel):
    idempotency_key: str
    booking: Booking
    status: Literal["tentative", "confirmed"] = "tentative"


class CalendarStatusRequest(BaseModel):
    entry_id: str
    status: Literal["tentative", "confirmed", "cancelled"]
    booking: Booking | None = None


class CalendarEntryRef(BaseModel):
    entry_id: str
    created: bool


class CalendarCancelRequest(BaseModel):
    """Cancels every entry carrying `idempotency_key` (and `entry_id`, when the workflow recorded
    it): an entry whose creation was never recorded is found by its key."""

    idempotency_key: str
    booking_ref: str
    entry_id: str | None = None


class CompensationResult(BaseModel):
    """The ids a compensation acted on; empty when nothing carrying the key exists."""

    found: list[str]


class SccKeyCheck(BaseModel):
    ok: bool
    reason: Literal["ok", "missing", "mismatch"]


class SccEventRequest(BaseModel):
    idempotency_key: str
    charter: CrewView


class SccUpdateRequest(BaseModel):
    event_id: str
    status: Literal["scheduled", "rescheduled", "cancelled"]
    charter: CrewView


class SccEventRef(BaseModel):
    event_id: str
    created: bool


class SccCancelRequest(BaseModel):
    """Cancels every event whose external reference is `idempotency_key` (and `event_id`, when
    the workflow recorded it)."""

    idempotency_key: str
    event_id: str | None = None
    charter: CrewView


class RedactionRequest(BaseModel):
    event_id: str
    amounts: list[Decimal]


class RedactionResult(BaseModel):
    changed: bool
    fields: list[str]


BRAND_FIELD = "a configured brand's name; None: the default brand"


class GuestPageRequest(BaseModel):
    charter: CrewView
    event_id: str | None
    cancelled: bool = False
    brand: str | None = Field(None, description=BRAND_FIELD)


class GuestPageRef(BaseModel):
    bucket: str
    key: str
    url: str
    content_sha256: str


class InvalidationRequest(BaseModel):
    idempotency_key: str
    slug: str
    content_sha256: str
    brand: str | None = Field(None, description=BRAND_FIELD)


class InvalidationRef(BaseModel):
    invalidation_id: str
    paths: list[str]
    caller_reference: str


class CrewEmailRequest(BaseModel):
    idempotency_key: str
    workflow_id: str
    member: CrewMember
    role: Role
    charter: CrewView
    kind: EmailKind = "invite"
    round: int = 1
    only_if_sent: list[str] = []
    """Idempotency keys of this member's earlier invitation or reschedule emails: when given, the
    email goes only if the ledger holds a claim for one of them (a cancellation notice only to a
    member who was asked)."""
    brand: str | None = Field(None, description=BRAND_FIELD)


class OperationsAlertRequest(BaseModel):
    idempotency_key: str
    subject: str
    body: str


class CaptainSummaryRequest(BaseModel):
    idempotency_key: str
    booking: Booking
    charter: CrewView
    confirmations: list[CrewAnswer]
    brand: str | None = Field(None, description=BRAND_FIELD)


class GuestEmailRequest(BaseModel):
    idempotency_key: str
    guest_email: str
    charter: CrewView
    kind: GuestEmailKind
    hours_before: float | None = None
    album_url: str | None = None
    brand: str | None = Field(None, description=BRAND_FIELD)
    moved_from: str | None = Field(None, description="kind `moved`: the page's old URL")


class AlbumRequest(BaseModel):
    charter: CrewView
    event_id: str
    brand: str | None = Field(None, description=BRAND_FIELD)


class AlbumRef(BaseModel):
    key: str
    url: str
    photos: int
    content_sha256: str


class EmailSent(BaseModel):
    message_id: str
    duplicate: bool
    skipped: bool = False
    """Nothing sent by design: `only_if_sent` named no email the member had been sent."""


class CrewSmsRequest(BaseModel):
    """One text to one opted-in crew member: the same kinds as the crew emails, the same magic
    link behind a short link. The idempotency key is the SMS's own (not the email's)."""

    idempotency_key: str
    workflow_id: str
    member: CrewMember
    role: Role
    charter: CrewView
    kind: EmailKind = "invite"
    round: int = 1
    brand: str | None = Field(None, description=BRAND_FIELD)
    only_if_sent: list[str] = []
    """Idempotency keys of this member's earlier texts: when given, the text goes only if the
    ledger holds a claim for one of them (a cancellation text only to a member who was texted)."""


class SmsSent(BaseModel):
    message_id: str
    duplicate: bool
    opted_out: bool = False
    """The number is on SNS's opt-out list: nothing was sent (status says so)."""
    skipped: bool = False
    """Nothing sent by design: the member has no phone or did not opt in to SMS."""
    segments: int = 0


class MovePageRequest(BaseModel):
    """Moves the guest page from one brand's site to another's: publish on the new site, leave a
    notice at the old URL linking to it, invalidate both."""

    idempotency_key: str
    charter: CrewView
    event_id: str | None
    from_brand: str | None = Field(None, description="the booking's brand now; None: default")
    to_brand: str


class MovePageResult(BaseModel):
    page: GuestPageRef
    """The page on the new brand's site (its `url` is the booking's new guest page URL)."""
    notice: GuestPageRef
    """The notice now at the old key, linking to the new URL."""
    invalidations: list[InvalidationRef]
    """New site's, then old site's."""
