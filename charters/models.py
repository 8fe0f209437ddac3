"""Every type that crosses a boundary: the booking file, workflow input and result, signals,
queries and activity messages. One place, validated by pydantic."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

CENT = Decimal("0.01")
Role = Literal["captain", "crew"]
EmailKind = Literal["invite", "reminder", "cancelled", "rescheduled", "day-of"]
GuestEmailKind = Literal["reminder", "thank-you"]

Money = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2, allow_inf_nan=False)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
Email = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, max_length=254, pattern=r"^[^@\s<>\"']+@[^@\s<>\"']+\.[A-Za-z]{2,}$"
    ),
]
MemberId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
BookingRef = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{4,16}$")]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]{1,64}$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Guest(Strict):
    name: Name
    email: Email
    party_size: int = Field(ge=1, le=150)


class CrewMember(Strict):
    id: MemberId
    name: Name
    email: Email
    hourly_rate: Money

    @property
    def first_name(self) -> str:
        return self.name.split()[0]


class MoneyIn(Strict):
    gross: Money
    fees: dict[Annotated[str, StringConstraints(min_length=1, max_length=60)], Money] = Field(
        default_factory=dict, max_length=20
    )


class Booking(Strict):
    """The booking file. Validated by `charters book` and again, with the workflow's clock, in the
    workflow; the `now` validation context enables the must-be-in-the-future rule."""

    booking_ref: BookingRef
    slug: Slug | None = None
    starts_at: datetime
    timezone: str = "America/Los_Angeles"
    duration_hours: Decimal = Field(gt=0, le=24, max_digits=4, decimal_places=2)
    location: Name
    guest: Guest
    captain: CrewMember
    crew: list[CrewMember] = Field(default_factory=list, max_length=30)
    money: MoneyIn
    what_to_bring: list[Annotated[str, StringConstraints(max_length=200)]] = Field(
        default_factory=lambda: [
            "Soft-soled shoes",
            "Sunscreen and sunglasses",
            "A light jacket: it is cooler on the water",
        ],
        max_length=20,
    )
    notes: Annotated[str, StringConstraints(max_length=2000)] = ""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("must be an IANA time zone such as America/Los_Angeles") from exc
        return value

    @field_validator("starts_at")
    @classmethod
    def _local_time(cls, value: datetime) -> datetime:
        if value.tzinfo is not None:
            raise ValueError("must be a local time without offset; the zone goes in `timezone`")
        return value

    @model_validator(mode="after")
    def _rules(self, info: ValidationInfo) -> Booking:
        ids = [self.captain.id, *(m.id for m in self.crew)]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"crew: ids must be unique (captain included); repeated: {dupes}")
        now = (info.context or {}).get("now")
        if isinstance(now, datetime) and self.starts_at_utc <= now:
            raise ValueError("starts_at: must be in the future")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def starts_at_utc(self) -> datetime:
        return self.starts_at.replace(tzinfo=self.zone).astimezone(UTC)

    @property
    def charter_date(self) -> date:
        return self.starts_at.date()

    @property
    def page_slug(self) -> str:
        if self.slug:
            return self.slug
        return f"{self.starts_at:%b}-{self.starts_at.day}-{self.booking_ref}".lower()

    @property
    def members(self) -> list[tuple[Role, CrewMember]]:
        return [("captain", self.captain), *(("crew", m) for m in self.crew)]

    def pay(self, member: CrewMember) -> Decimal:
        return (member.hourly_rate * self.duration_hours).quantize(CENT)

    def financials(self) -> Financials:
        crew_pay = sum((self.pay(m) for m in self.crew), Decimal("0"))
        captain_pay = self.pay(self.captain)
        fees = sum(self.money.fees.values(), Decimal("0"))
        return Financials(
            gross=self.money.gross,
            fees=dict(self.money.fees),
            crew_pay=crew_pay,
            captain_pay=captain_pay,
            net=(self.money.gross - fees - crew_pay - captain_pay).quantize(CENT),
        )

    def crew_view(self, guest_page_url: str) -> CrewView:
        """What crew may see: everything but money."""
        return CrewView(
            booking_ref=self.booking_ref,
            slug=self.page_slug,
            starts_at=self.starts_at,
            timezone=self.timezone,
            duration_hours=self.duration_hours,
            location=self.location,
            guest_name=self.guest.name,
            party_size=self.guest.party_size,
            captain=CrewSeat(id=self.captain.id, name=self.captain.name, role="captain"),
            crew=[CrewSeat(id=m.id, name=m.name, role="crew") for m in self.crew],
            what_to_bring=list(self.what_to_bring),
            notes=self.notes,
            guest_page_url=guest_page_url,
        )


class Financials(Strict):
    gross: Decimal
    fees: dict[str, Decimal]
    crew_pay: Decimal
    captain_pay: Decimal
    net: Decimal

    def amounts(self) -> list[Decimal]:
        """Every money figure of the booking, for the revenue redactor and the leak checks."""
        return [self.gross, *self.fees.values(), self.net, self.gross - sum(self.fees.values())]


class CrewSeat(Strict):
    id: str
    name: str
    role: Role

    @property
    def first_name(self) -> str:
        return self.name.split()[0]


class CrewView(Strict):
    """The charter as crew and guests may see it. Has no money fields by construction."""

    booking_ref: str
    slug: str
    starts_at: datetime
    timezone: str
    duration_hours: Decimal
    location: str
    guest_name: str
    party_size: int
    captain: CrewSeat
    crew: list[CrewSeat]
    what_to_bring: list[str]
    notes: str
    guest_page_url: str

    @property
    def seats(self) -> list[CrewSeat]:
        return [self.captain, *self.crew]

    @property
    def ends_at(self) -> datetime:
        return self.starts_at + timedelta(hours=float(self.duration_hours))


def album_slug(slug: str) -> str:
    """The photo album is a guest page of its own, `/g/{slug}-photos`, so the same CloudFront
    Function and path scheme serve it (within the 64 characters a slug may have)."""
    return f"{slug[:57]}-photos"


def parse_booking(data: Any, now: datetime | None = None) -> Booking:
    """Validate a booking mapping; with `now`, also require a future start."""
    return Booking.model_validate(data, context={"now": now} if now else None)


def describe_validation_error(exc: ValidationError) -> str:
    """One line per problem, naming the field and the rule."""
    lines = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "booking"
        msg = re.sub(r"^Value error, ", "", err["msg"])
        lines.append(f"{field}: {msg}")
    return "; ".join(lines)


# ---- Workflow input, options and result -------------------------------------------------


class BookingOptions(BaseModel):
    """Timing knobs the workflow needs; the starter fills them from settings so the workflow
    never reads configuration itself."""

    scc_retry_initial_seconds: float = 2.0
    scc_retry_max_interval_seconds: float = 60.0
    activity_max_interval_seconds: float = 30.0
    activity_timeout_seconds: float = 30.0
    reminder_after_hours: float = 24.0
    max_reminders: int = 2
    confirm_deadline_hours_before: float = 48.0
    guest_page_url: str
    step_retry_budget_seconds: float = Field(
        600.0, description="transient retries of one step before it blocks for a person"
    )
    guest_reminder_hours_before: list[float] = Field(default_factory=lambda: [72.0, 24.0])
    crew_day_of_hours_before: float = 4.0
    thank_you_hours_after_end: float = 2.0
    history_event_limit: int = Field(
        2000, description="continue-as-new at a quiet point once history is this long"
    )


class CharterBookingInput(BaseModel):
    """Raw booking (validated again inside the workflow) plus options. Never a secret. `state` is
    set only by continue-as-new: the booking's life so far, carried to the next run."""

    booking: dict[str, Any]
    options: BookingOptions
    state: BookingState | None = None


StepState = Literal[
    "pending",
    "running",
    "done",
    "failed",
    "retrying",
    "blocked",
    "skipped",
    "compensated",
    "cancelled",
]


class CrewAnswer(BaseModel):
    crew_id: str
    name: str
    role: Role
    answer: Literal["pending", "accepted", "declined", "replaced"] = "pending"
    by: str | None = None
    reminders_sent: int = 0


class Block(BaseModel):
    """A step that waits for a person: what it is, why, and the exact command that resolves it."""

    on: str
    reason: str
    fix: str
    since: datetime | None = None


class BookingStatus(BaseModel):
    workflow_id: str
    booking_ref: str
    stage: str
    round: int = 1
    steps: dict[str, StepState]
    crew: list[CrewAnswer]
    blocked_on: str | None = None
    blocked_reason: str | None = None
    blocked_fix: str | None = Field(None, description="the exact command that resolves the block")
    outcome: Literal["completed", "cancelled"] | None = None
    blocks: list[Block] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list, description="what happened that people see")
    guest_page_url: str | None = None
    charter: CrewView | None = None
    error: str | None = None


class BookingResult(BaseModel):
    workflow_id: str
    booking_ref: str
    outcome: Literal["confirmed", "completed", "cancelled"]
    calendar_entry_id: str | None
    scc_event_id: str | None
    guest_page_url: str
    guest_page_key: str
    invalidation_ids: list[str]
    crew_email_ids: dict[str, str]
    captain_summary_email_id: str | None
    confirmations: list[CrewAnswer]
    guest_email_ids: dict[str, str] = Field(default_factory=dict)
    album_url: str | None = None
    compensated: list[str] = Field(default_factory=list)


class BookingState(BaseModel):
    """Everything the workflow knows of the booking, in one model: held by the workflow and its
    helpers, carried whole through continue-as-new."""

    booking: Booking | None = None
    status: BookingStatus
    answers: dict[str, CrewAnswer] = Field(default_factory=dict)
    invited_at: dict[str, datetime] = Field(default_factory=dict)
    round: int = 1
    crew_version: int = 1
    calendar_id: str | None = None
    event_id: str | None = None
    page: GuestPageRef | None = None
    invalidations: list[str] = Field(default_factory=list)
    emails: dict[str, str] = Field(default_factory=dict)
    notified: list[str] = Field(default_factory=list)
    done: list[str] = Field(default_factory=list, description="one-off effects already made")
    alerted: list[str] = Field(default_factory=list)
    compensated: list[str] = Field(default_factory=list)
    summary_id: str | None = None
    summary_version: int = 0
    cancel: CancelBooking | None = None
    reschedules: list[Reschedule] = Field(default_factory=list)
    assignments: list[AssignCrew] = Field(default_factory=list)
    bounces: list[EmailBounced] = Field(default_factory=list)
    early: list[CrewConfirmation] = Field(default_factory=list)
    resolutions: dict[str, str] = Field(default_factory=dict)
    repair_requested: bool = False
    setup_done: bool = False
    escalated_round: int = 0
    asked_at: datetime | None = None
    finalized: str | None = Field(None, description="round:crew_version the summary went for")
    guest_emails: dict[str, str] = Field(default_factory=dict)
    album_url: str | None = None
    departed: bool = False
    runs: int = 1


# ---- Signals ----------------------------------------------------------------------------


class CrewConfirmation(BaseModel):
    crew_id: str
    decision: Literal["accept", "decline"]
    by: str = "crew"
    round: int | None = Field(None, description="invitation round of a magic link; None: current")


class AssignCrew(BaseModel):
    replaces: str
    member: CrewMember


class CancelBooking(BaseModel):
    reason: str = "cancelled by operator"


class Reschedule(BaseModel):
    starts_at: datetime
    duration_hours: Decimal | None = None


class ApproveSccKeyRepair(BaseModel):
    approved_by: str = "operator"


class ResolveBlock(BaseModel):
    """An operator's answer to a blocked step: try it again now, or skip it where skipping is
    safe (the step's own rule; a refused skip says why)."""

    action: Literal["retry", "skip"] = "retry"
    step: str | None = Field(None, description="the blocked step; None: whatever is blocked")
    by: str = "operator"


class EmailBounced(BaseModel):
    """SES told us (bounce, complaint, or a rejected send) that a crew member's address does not
    receive mail: their seat is blocked until an operator fixes the address or replaces them."""

    crew_id: str
    kind: Literal["bounce", "complaint", "rejected"]
    reason: str


class Verdict(BaseModel):
    """The workflow's own answer to a person's action: what the page or the CLI shows."""

    recorded: bool
    code: str = Field(description="`recorded`, or why not: contract.REFUSED_*")
    message: str


# ---- Activity messages ------------------------------------------------------------------


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


class RedactionRequest(BaseModel):
    event_id: str
    amounts: list[Decimal]


class RedactionResult(BaseModel):
    changed: bool
    fields: list[str]


class GuestPageRequest(BaseModel):
    charter: CrewView
    event_id: str | None
    cancelled: bool = False


class GuestPageRef(BaseModel):
    bucket: str
    key: str
    url: str
    content_sha256: str


class InvalidationRequest(BaseModel):
    idempotency_key: str
    slug: str
    content_sha256: str


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


class OperationsAlertRequest(BaseModel):
    idempotency_key: str
    subject: str
    body: str


class CaptainSummaryRequest(BaseModel):
    idempotency_key: str
    booking: Booking
    charter: CrewView
    confirmations: list[CrewAnswer]


class GuestEmailRequest(BaseModel):
    idempotency_key: str
    guest_email: str
    charter: CrewView
    kind: GuestEmailKind
    hours_before: float | None = None
    album_url: str | None = None


class AlbumRequest(BaseModel):
    charter: CrewView
    event_id: str


class AlbumRef(BaseModel):
    key: str
    url: str
    photos: int
    content_sha256: str


class EmailSent(BaseModel):
    message_id: str
    duplicate: bool


CharterBookingInput.model_rebuild()
