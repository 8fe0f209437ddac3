"""Helpers the end-to-end tests share: booking factories and readers of the emulated systems."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import httpx
from boto3.dynamodb.types import TypeDeserializer
from charters_dev.isolated import sample_charter
from charters_dev.mailbox import Mail, sent_mail
from pydantic import ValidationError
from temporalio.testing import ActivityEnvironment

from charters.models import CrewMember
from charters.settings import Settings
from charters.starter.book import validate, with_page_slug

T = TypeVar("T")
_refs = itertools.count(1)
_run = format(int(time.time()) % 36**3, "x").upper()


def new_ref(prefix: str = "T") -> str:
    """A unique Boatsetter-like reference per test booking."""
    return f"{prefix}{_run}{next(_refs):04d}"[:16]


def booking_data(ref: str | None = None, **overrides: Any) -> dict[str, Any]:
    """A booking file's data with the page slug `charters book` would choose for it (random), so
    a test can name the page before the workflow shows it; `slug=None` leaves the choice to the
    starter, and data that does not validate gets no slug."""
    data = sample_charter(ref or new_ref())
    data.update(overrides)
    if "slug" not in data:
        with contextlib.suppress(ValidationError):
            data["slug"] = with_page_slug(validate(data)).slug
    return data


REVENUE_STRINGS = ["840.75", "840", "289.41", "251.34", "201.34", "589.41"]
# Who takes a seat when a test replaces a member.
NEWCOMER = CrewMember(
    id="crew-9", name="Casey Morgan", email="casey@sailjada.com", hourly_rate=Decimal("25.00")
)


def mail_for(settings: Settings, booking_ref: str) -> list[Mail]:
    return [m for m in sent_mail(settings.aws_endpoint_url or "") if booking_ref in m.subject]


def calendar_entries(settings: Settings, booking_ref: str) -> list[dict[str, Any]]:
    path = settings.state_dir / "calendar.json"
    entries = json.loads(path.read_text()) if path.exists() else {}
    return [e for e in entries.values() if e.get("booking_ref") == booking_ref]


def scc_items(aws: Any, settings: Settings, booking_ref: str) -> list[dict[str, Any]]:
    de = TypeDeserializer()
    pages = aws.dynamodb.get_paginator("scan").paginate(TableName=settings.events_table)
    items = [{k: de.deserialize(v) for k, v in i.items()} for p in pages for i in p["Items"]]
    return [i for i in items if i.get("booking_ref") == booking_ref]


def invalidations_for(aws: Any, settings: Settings, slug: str) -> list[list[str]]:
    """The invalidations CloudFront holds for the page: one per CallerReference. CloudFront
    answers a repeated CallerReference with the first invalidation (API reference,
    InvalidationBatch); moto ignores it and makes another, so repeats are folded here, and
    `test_aws_activities` shows a retry sends the same reference."""
    pages = aws.cloudfront.get_paginator("list_invalidations").paginate(
        DistributionId=settings.distribution_id
    )
    found: dict[str, list[str]] = {}
    for summary in (s for page in pages for s in page["InvalidationList"].get("Items", []) or []):
        batch = aws.cloudfront.get_invalidation(
            DistributionId=settings.distribution_id, Id=summary["Id"]
        )["Invalidation"]["InvalidationBatch"]
        paths = batch["Paths"].get("Items", [])
        if f"/g/{slug}" in paths:
            found.setdefault(batch["CallerReference"], paths)
    return list(found.values())


_phones = itertools.count()


def follow_link(link: str, decision: str, attempts: int = 4) -> httpx.Response:
    """Open the link, then press the button; like a person, try again if the page says so. Each
    click comes from a phone of its own (an address of TEST-NET-1 as X-Forwarded-For, which the
    confirm endpoint trusts from 127.0.0.1), as crew members' do: the whole suite's clicks would
    otherwise share one client's budget of 60 a minute."""
    phone = {"X-Forwarded-For": f"192.0.2.{next(_phones) % 254 + 1}"}
    with httpx.Client(timeout=15, headers=phone) as http:
        for attempt in range(attempts):
            try:
                if http.get(link).status_code == 503:
                    raise httpx.ReadTimeout("busy")
                return http.post(link, data={"decision": decision})
            except httpx.TimeoutException:
                if attempt == attempts - 1:
                    raise
                time.sleep(2)
    raise AssertionError("unreachable")


async def eventually(
    check: Callable[[], T | None], timeout: float = 30.0, what: str = "condition"
) -> T:
    """Polls until `check()` returns something truthy (sync check, run in a thread)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = await asyncio.to_thread(check)
            if last:
                return last
        except AssertionError:
            pass
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; last value: {last!r}")


def write_booking(tmp: Path, data: dict[str, Any]) -> Path:
    path = tmp / f"{data.get('booking_ref', 'booking')}.json"
    path.write_text(json.dumps(data))
    return path


def attempt(timeout: float = 30.0, spent: float = 0.0) -> ActivityEnvironment:
    """An activity attempt with a start-to-close `timeout` that began `spent` seconds ago (the
    SDK's default test info began in 1970, an attempt whose deadline has long passed)."""
    env = ActivityEnvironment()
    env.info = replace(
        ActivityEnvironment.default_info(),
        started_time=datetime.now(UTC) - timedelta(seconds=spent),
        start_to_close_timeout=timedelta(seconds=timeout),
        schedule_to_close_timeout=None,
    )
    return env
