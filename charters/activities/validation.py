"""Validates the booking inside the workflow's first step with the same model the CLI uses, after
filling in crew named by id from the roster and pinning the booking's brand."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from temporalio import activity

from charters.aws_errors import aws_errors
from charters.brands import BrandBook
from charters.errors import invalid_booking
from charters.models import Booking, describe_validation_error, parse_booking
from charters.roster import CrewRoster, RosterError, resolve_members

FIXES = {
    "ResourceNotFound": "set CHARTERS_CREW_TABLE to the crew roster's table (the template "
    "creates it)",
    "AccessDenied": "grant the worker's role dynamodb:GetItem on the crew roster table",
}
DEFAULT_FIX = "check CHARTERS_CREW_TABLE and the worker's DynamoDB permissions on it"


def validate_booking(
    raw: dict[str, Any], roster: CrewRoster | None = None, brands: BrandBook | None = None
) -> Booking:
    """The validation itself. With `roster`, crew named by id are filled in from it; with
    `brands`, the brand must be one of them and a booking naming none gets the default's name.
    Bad input, an unknown or retired id and an unknown brand are one non-retryable error naming
    the field."""
    try:
        data = raw
        if roster is not None:
            with aws_errors("DynamoDB (crew roster)", FIXES, DEFAULT_FIX, subject="crew-roster"):
                data = resolve_members(raw, roster)
        booking = parse_booking(
            data, now=datetime.now(UTC), brands=brands.names if brands else None
        )
    except RosterError as exc:
        raise invalid_booking(f"invalid booking: {exc}") from None
    except ValidationError as exc:
        raise invalid_booking(f"invalid booking: {describe_validation_error(exc)}") from None
    if booking.brand is None and brands is not None:
        booking = booking.model_copy(update={"brand": brands.default})
    return booking


class ValidationActivities:
    def __init__(self, roster: CrewRoster, brands: BrandBook) -> None:
        self._roster = roster
        self._brands = brands

    @activity.defn(name="validate_booking")
    def validate_booking(self, raw: dict[str, Any]) -> Booking:
        """The validated booking is the booking's snapshot: roster details copied in and the
        brand set, so a later roster or default-brand change alters no running booking."""
        return validate_booking(raw, self._roster, self._brands)
