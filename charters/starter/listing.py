"""Builds the visibility query behind `charters list` from operator filters."""

from __future__ import annotations

import re
from datetime import date as date_type
from datetime import timedelta

from charters import contract

_SAFE = re.compile(r"^[a-z0-9:_-]{1,64}$")
_BRAND = re.compile(r"^[a-z0-9][a-z0-9.-]{0,62}$")

STAGES = contract.STAGES
"""The stages the workflow reports (BookingStage); `--stage` is matched against them."""


def normalize(value: str) -> str:
    """`Awaiting Crew`, `awaiting_crew` and `AWAITING-CREW` name the same stage."""
    return re.sub(r"[\s_]+", "-", value.strip().lower())


def visibility_query(
    stage: str | None = None,
    blocked_on: str | None = None,
    date: str | None = None,
    brand: str | None = None,
) -> str:
    """Filters are validated before they reach the query, so no input can change its shape.
    A bad value raises ValueError naming the option and what it accepts."""
    clauses = [f"WorkflowType = '{contract.WORKFLOW_NAME}'"]
    if stage is not None:
        wanted = normalize(stage)
        if wanted not in STAGES:
            raise ValueError(f"--stage {stage!r} is not a stage; one of: {', '.join(STAGES)}")
        clauses.append(f"BookingStage = '{wanted}'")
    if blocked_on is not None:
        wanted = normalize(blocked_on)
        if not _SAFE.match(wanted):
            raise ValueError(
                f"--blocked-on {blocked_on!r}: a step or block name such as "
                f"{contract.BLOCKED_SCC_KEY_HASH} or {contract.BLOCKED_CREW_DECLINED}"
            )
        clauses.append(f"BlockedOn = '{wanted}'")
    if brand is not None:
        if not _BRAND.match(brand):
            raise ValueError(f"--brand {brand!r}: a configured brand's name, e.g. sailjada.com")
        clauses.append(f"{contract.SA_BRAND.name} = '{brand}'")
    if date is not None:
        try:
            day = date_type.fromisoformat(date.strip())
        except ValueError:
            raise ValueError(f"--date {date!r} is not a calendar date (YYYY-MM-DD)") from None
        clauses.append(
            f"CharterDate >= '{day.isoformat()}T00:00:00Z' AND "
            f"CharterDate < '{(day + timedelta(days=1)).isoformat()}T00:00:00Z'"
        )
    return " AND ".join(clauses)
