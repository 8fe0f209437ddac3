"""Starting a booking: read the file, validate it, start the workflow (refused if it exists)."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from temporalio.client import Client, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)

from charters import contract
from charters.models import (
    Booking,
    BookingOptions,
    BookingResult,
    CharterBookingInput,
    parse_booking,
)
from charters.settings import Settings


class _DecimalLoader(yaml.SafeLoader):
    """YAML floats become Decimal: money is never a float."""


def _decimal(loader: yaml.SafeLoader, node: yaml.Node) -> Decimal:
    assert isinstance(node, yaml.ScalarNode)
    return Decimal(str(loader.construct_scalar(node)))


_DecimalLoader.add_constructor("tag:yaml.org,2002:float", _decimal)


def load_booking_file(path: Path) -> dict[str, Any]:
    text = path.read_text()
    if path.suffix.lower() == ".json":
        data = json.loads(text, parse_float=Decimal)
    else:
        data = yaml.load(text, Loader=_DecimalLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a booking file holds one mapping of fields")
    return data


def validate(data: dict[str, Any], brands: list[str] | None = None) -> Booking:
    return parse_booking(data, now=datetime.now(UTC), brands=brands)


def names_roster_members(data: dict[str, Any]) -> bool:
    """Whether the booking names a crew member or its captain by id only."""
    seats = [data.get("captain"), *(data.get("crew") or [])]
    return any(isinstance(s, str) or (isinstance(s, dict) and set(s) == {"id"}) for s in seats)


def validate_with_roster(settings: Settings, data: dict[str, Any]) -> Booking:
    """The CLI's early check of a booking file: crew named by id are looked up on the roster
    (unknown or retired ids refused now), the brand must be configured. The workflow's own
    validation takes the snapshot it keeps; the file goes to it as written. Raises RosterError,
    BrandError or ValidationError."""
    brands = settings.brand_book()
    if names_roster_members(data):
        from charters.roster import CrewRoster, resolve_members
        from charters.worker.wiring import aws_client

        roster = CrewRoster(aws_client(settings, "dynamodb"), settings.crew_table)
        data = resolve_members(data, roster)
    return validate(data, brands.names)


SLUG_TOKEN_BYTES = 10  # 80 random bits: 16 base32 characters


def new_page_slug(booking: Booking) -> str:
    """`{mon}-{day}-{ref}-{token}`: the date and reference for people reading the link, and a
    token from `secrets` so that no one who knows (or guesses) the date and the reference can
    find the page (the guest's name, notes and the upload form are behind it). At most 40
    characters, so the album's `{slug}-photos` keeps every character of the token."""
    token = base64.b32encode(secrets.token_bytes(SLUG_TOKEN_BYTES)).decode().rstrip("=")
    return f"{booking.starts_at:%b}-{booking.starts_at.day}-{booking.booking_ref}-{token}".lower()


def with_page_slug(booking: Booking) -> Booking:
    """The booking with its guest page's slug, chosen once, here, before the workflow starts
    (workflow code stays deterministic): it travels in the booking data, so a reschedule keeps it
    and the album follows it; a second start of the same booking is refused, so the running
    booking's slug never changes. A slug the booking file gives is kept as it is."""
    if booking.slug:
        return booking
    return booking.model_copy(update={"slug": new_page_slug(booking)})


def booking_options(settings: Settings, booking: Booking) -> BookingOptions:
    """Every option the workflow takes that is also a setting, by name (a new one cannot be
    forgotten here), and the booking's page URL on its brand's site."""
    shared = BookingOptions.model_fields.keys() & Settings.model_fields.keys()
    return BookingOptions(
        **settings.model_dump(include=shared),
        guest_page_url=settings.guest_page_url(booking.page_slug, booking.brand),
    )


async def start_booking(
    client: Client,
    settings: Settings,
    booking: Booking,
    options: BookingOptions | None = None,
    raw: dict[str, Any] | None = None,
) -> WorkflowHandle[Any, BookingResult]:
    """Starts `charter-{booking_ref}` with its page slug (`with_page_slug`; the options' page URL
    follows it). A running or completed booking with that id refuses the start
    (WorkflowAlreadyStartedError); a failed one may be booked again after a fix. `raw`: the
    booking as written (crew named by id), for the workflow's validation to fill in."""
    chosen = with_page_slug(booking)
    options = options or booking_options(settings, chosen)
    if chosen is not booking:  # options made before the slug was chosen: the URL follows it
        options = options.model_copy(
            update={"guest_page_url": settings.guest_page_url(chosen.page_slug, chosen.brand)}
        )
        if raw is not None:
            raw = {**raw, "slug": chosen.slug}
    booking = chosen
    return await client.start_workflow(
        contract.WORKFLOW_NAME,
        CharterBookingInput(booking=raw or booking.model_dump(mode="json"), options=options),
        id=contract.workflow_id_for(booking.booking_ref),
        task_queue=settings.task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(contract.SA_BOOKING_REF, booking.booking_ref),
                SearchAttributePair(contract.SA_CHARTER_DATE, booking.starts_at_utc),
                SearchAttributePair(contract.SA_BOOKING_STAGE, "received"),
            ]
        ),
        memo={"guest_page_url": options.guest_page_url},
        result_type=BookingResult,
    )
