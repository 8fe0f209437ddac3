"""The booking file as people write it, and the views of it crew and guests may see."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
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
EmailKind = Literal["invite", "reminder", "cancelled", "rescheduled", "day-of", "released"]
GuestEmailKind = Literal["reminder", "thank-you", "cancelled", "moved"]

_AMOUNT = re.compile(r"^(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?$")


def read_money(value: Any) -> Any:
    """Amounts as people write them: `$1,234.56`, `1234.56 USD`, `1234.56` or a number all read
    to Decimal('1234.56'). A float goes through its shortest repr, so 1234.56 stays 1234.56.
    Anything else is left for pydantic to refuse, with a hint of the accepted forms."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if not isinstance(value, str):
        return value
    text = value.strip()
    text = re.sub(r"(?i)\s*(usd|us\$)$", "", text).strip()
    text = text.removeprefix("$").strip()
    if not _AMOUNT.match(text):
        raise ValueError(
            f"{value!r} is not an amount; write it like 1234.56, $1,234.56 or 1234.56 USD"
        )
    return Decimal(text.replace(",", ""))


Money = Annotated[
    Decimal,
    BeforeValidator(read_money),
    Field(ge=0, max_digits=12, decimal_places=2, allow_inf_nan=False),
]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
Email = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, max_length=254, pattern=r"^[^@\s<>\"']+@[^@\s<>\"']+\.[A-Za-z]{2,}$"
    ),
]
Phone = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^\+[1-9][0-9]{7,14}$"),
]
"""E.164: `+`, country code and number, 8 to 15 digits, no spaces."""
BrandName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9.-]{0,62}$")]
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
    phone: Phone | None = None
    sms: bool = Field(False, description="opted in to SMS (needs `phone`); roster only")

    @model_validator(mode="after")
    def _sms_needs_phone(self) -> CrewMember:
        if self.sms and self.phone is None:
            raise ValueError("sms: opting in needs a phone number (E.164, e.g. +16195550100)")
        return self

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
    brand: BrandName | None = Field(
        None, description="a configured brand; validation fills in the default brand's name"
    )
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
    allow_loss: bool = Field(
        False, description="book it even though fees and pay exceed the gross (operator's call)"
    )

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
        if not self.allow_loss:
            self._refuse_loss()
        brands = (info.context or {}).get("brands")
        if brands is not None and self.brand is not None and self.brand not in brands:
            raise ValueError(
                f"brand: {self.brand!r} is not a configured brand; one of: {', '.join(brands)}"
            )
        now = (info.context or {}).get("now")
        if isinstance(now, datetime) and self.starts_at_utc <= now:
            raise ValueError("starts_at: must be in the future")
        return self

    def _refuse_loss(self) -> None:
        """Fees above the gross, or a negative net, is a typo far more often than a deal."""
        fees = sum(self.money.fees.values(), Decimal("0"))
        if fees > self.money.gross:
            names = ", ".join(f"money.fees.{k}" for k in self.money.fees)
            raise ValueError(
                f"{names}: fees {fees} exceed money.gross {self.money.gross} "
                "(set allow_loss: true to book it anyway)"
            )
        net = self.financials().net
        if net < 0:
            raise ValueError(
                f"money.gross {self.money.gross} does not cover fees {fees} and crew and "
                f"captain pay: net {net} (set allow_loss: true to book it anyway)"
            )

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
        """The slug the starter chose (`charters.starter.book.with_page_slug`, random); the
        date-and-reference form only for a booking started before slugs were chosen there."""
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


def parse_booking(
    data: Any, now: datetime | None = None, brands: list[str] | None = None
) -> Booking:
    """Validate a booking mapping; with `now`, also require a future start; with `brands`, the
    booking's brand must be one of them."""
    context: dict[str, Any] = {}
    if now:
        context["now"] = now
    if brands is not None:
        context["brands"] = brands
    return Booking.model_validate(data, context=context or None)


def describe_validation_error(exc: ValidationError) -> str:
    """One line per problem, naming the field and the rule."""
    lines = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "booking"
        msg = re.sub(r"^Value error, ", "", err["msg"])
        lines.append(f"{field}: {msg}")
    return "; ".join(lines)
