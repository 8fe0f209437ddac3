"""Builds the visibility query behind `charters list` from operator filters."""

from __future__ import annotations

import re
from datetime import date as date_type
from datetime import timedelta

from charters import contract

_SAFE = re.compile(r"^[a-z0-9-]{1,64}$")


def visibility_query(
    stage: str | None = None, blocked_on: str | None = None, date: str | None = None
) -> str:
    """Filters are validated before they reach the query, so no input can change its shape."""
    clauses = [f"WorkflowType = '{contract.WORKFLOW_NAME}'"]
    for name, value in (("BookingStage", stage), ("BlockedOn", blocked_on)):
        if value is None:
            continue
        if not _SAFE.match(value):
            raise ValueError(f"{name}: must match [a-z0-9-]{{1,64}}")
        clauses.append(f"{name} = '{value}'")
    if date is not None:
        day = date_type.fromisoformat(date)
        clauses.append(
            f"CharterDate >= '{day.isoformat()}T00:00:00Z' AND "
            f"CharterDate < '{(day + timedelta(days=1)).isoformat()}T00:00:00Z'"
        )
    return " AND ".join(clauses)
