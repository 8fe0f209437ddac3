"""Validates the booking inside the workflow's first step with the same model the CLI uses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from temporalio import activity

from charters.errors import invalid_booking
from charters.models import Booking, describe_validation_error, parse_booking


@activity.defn(name="validate_booking")
def validate_booking(raw: dict[str, Any]) -> Booking:
    try:
        return parse_booking(raw, now=datetime.now(UTC))
    except ValidationError as exc:
        raise invalid_booking(f"invalid booking: {describe_validation_error(exc)}") from None
