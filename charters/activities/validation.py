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


class ValidationActivities:
    def __init__(self, roster: CrewRoster, brands: BrandBook) -> None:
        self._roster = roster
        self._brands = brands

    @activity.defn(name="validate_booking")
    def validate_booking(self, raw: dict[str, Any]) -> Booking:
        """The validated booking is the booking's snapshot: roster details copied in, and the
        brand set (the default's name when the file names none), so a later roster or default
        brand change alters no running booking. Bad input, an unknown or retired id and an
        unknown brand fail at once, naming the field."""
        try:
            with aws_errors("DynamoDB (crew roster)", FIXES, DEFAULT_FIX, subject="crew-roster"):
                data = resolve_members(raw, self._roster)
            booking = parse_booking(data, now=datetime.now(UTC), brands=self._brands.names)
        except RosterError as exc:
            raise invalid_booking(f"invalid booking: {exc}") from None
        except ValidationError as exc:
            raise invalid_booking(f"invalid booking: {describe_validation_error(exc)}") from None
        if booking.brand is None:
            booking = booking.model_copy(update={"brand": self._brands.default})
        return booking
