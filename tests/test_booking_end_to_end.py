"""The seed charter booked end to end on the real parts, checked in the emulated systems."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from charters.models import BookingResult
from charters.settings import Settings
from charters.starter.book import load_booking_file
from charters.worker.wiring import AwsClients
from tests.conftest import Booker
from tests.support import (
    REVENUE_STRINGS,
    calendar_entries,
    invalidations_for,
    mail_for,
    new_ref,
    scc_items,
)

SEED = Path(__file__).parent.parent / "examples" / "seed-charter.yaml"


@pytest.fixture(scope="module")
async def seed_booking(booker: Booker) -> tuple[dict[str, Any], BookingResult]:
    data = load_booking_file(SEED)
    data = {**data, "booking_ref": new_ref("SEED")}
    data["starts_at"] = data["starts_at"].replace(
        "2027", str(__import__("datetime").date.today().year + 1)
    )
    result = await booker.book_and_confirm(data)
    return data, result


async def test_seed_booking_completes_with_every_artifact(
    seed_booking: tuple[dict[str, Any], BookingResult],
) -> None:
    data, result = seed_booking
    assert result.outcome == "confirmed"
    assert result.workflow_id == f"charter-{data['booking_ref']}"
    assert result.calendar_entry_id and result.scc_event_id
    # the seed file names no slug: `charters book` chose one, date, reference and 16 random
    # base32 characters
    slug = f"may-30-{data['booking_ref'].lower()}-[a-z2-7]{{16}}"
    assert re.fullmatch(f"guest-pages/{slug}.html", result.guest_page_key), result.guest_page_key
    assert result.invalidation_ids and result.captain_summary_email_id
    assert {a.crew_id: a.answer for a in result.confirmations} == {
        "captain-1": "accepted",
        "crew-1": "accepted",
        "crew-2": "accepted",
    }


async def test_guest_page_is_in_s3_with_details_and_content_type(
    seed_booking: tuple[dict[str, Any], BookingResult],
    aws: AwsClients,
    settings: Settings,
) -> None:
    _, result = seed_booking
    obj = aws.s3.get_object(Bucket=settings.guest_bucket, Key=result.guest_page_key)
    assert obj["ContentType"] == "text/html; charset=utf-8"
    html = obj["Body"].read().decode()
    for detail in (
        "Sheraton Marina",
        "May 30",
        "9:00 AM",
        "3 hours",
        "Boatsetter Guest",
        "Captain Sam",
        "Alex",
        "Jordan",
        result.scc_event_id or "?",
    ):
        assert detail in html, detail
    for amount in REVENUE_STRINGS:
        assert amount not in html


async def test_cloudfront_invalidated_the_viewer_and_the_rewritten_paths(
    seed_booking: tuple[dict[str, Any], BookingResult],
    aws: AwsClients,
    settings: Settings,
) -> None:
    _, result = seed_booking
    slug = result.guest_page_key.removeprefix("guest-pages/").removesuffix(".html")
    found = invalidations_for(aws, settings, slug)
    assert found == [[f"/g/{slug}", f"/g/{slug}/", f"/guest-pages/{slug}.html"]]


async def test_scc_item_holds_no_revenue_and_exactly_one_of_each_effect(
    seed_booking: tuple[dict[str, Any], BookingResult],
    aws: AwsClients,
    settings: Settings,
) -> None:
    data, result = seed_booking
    items = scc_items(aws, settings, data["booking_ref"])
    assert [i["event_id"] for i in items] == [result.scc_event_id]
    text = repr(items[0])
    for amount in REVENUE_STRINGS:
        assert amount not in text
    assert items[0]["guest_page_url"] == result.guest_page_url
    entries = calendar_entries(settings, data["booking_ref"])
    assert len(entries) == 1 and entries[0]["status"] == "confirmed"
    assert entries[0]["revenue"]["net"] == "289.41"


async def test_each_crew_member_got_one_email_with_a_working_link(
    seed_booking: tuple[dict[str, Any], BookingResult],
    settings: Settings,
) -> None:
    data, _ = seed_booking
    mails = mail_for(settings, data["booking_ref"])
    invites = [m for m in mails if m.magic_links()]
    recipients = sorted(r for m in invites for r in m.to)
    assert recipients == ["alex@sailjada.com", "captain@sailjada.com", "jordan@sailjada.com"]
    for mail in invites:
        for amount in REVENUE_STRINGS:
            assert amount not in mail.body
        page = httpx.get(mail.magic_links()["accept"], timeout=10)
        assert page.status_code == 200
        assert "Your answer is recorded" in page.text and "accepted" in page.text
    summaries = [m for m in mails if m.subject.startswith("Confirmed:")]
    assert len(summaries) == 1 and summaries[0].to == ["captain@sailjada.com"]
    assert "$289.41" in summaries[0].body and "$840.75" in summaries[0].body


def test_calendar_stand_in_rejects_missing_and_wrong_token(settings: Settings) -> None:
    body = {
        "event_type": "charter",
        "date": "2030-01-01",
        "duration_hours": "3",
        "location": "x",
        "guest_name": "x",
        "booking_ref": "NOPE0001",
    }
    missing = httpx.post(f"{settings.calendar_url}/calendar", json=body)
    wrong = httpx.post(
        f"{settings.calendar_url}/calendar",
        json=body,
        headers={settings.dashboard_token_header: "not-the-token"},
    )
    assert (missing.status_code, wrong.status_code) == (401, 403)
    assert calendar_entries(settings, "NOPE0001") == []


def test_scc_stand_in_rejects_wrong_key_and_missing_hash(
    settings: Settings,
    aws: AwsClients,
) -> None:
    from charters_dev.seed import set_service_key_hash

    key = aws.secretsmanager.get_secret_value(SecretId=settings.secret_scc_service_key)[
        "SecretString"
    ]
    url = f"{settings.scc_api_url}/events"
    body = {"event_name": "x", "date": "2030-01-01T09:00:00", "booking_ref": "NOPE0002"}
    header = settings.scc_service_key_header
    assert httpx.post(url, json=body, headers={header: "wrong"}).status_code == 401
    set_service_key_hash(aws, settings, present=False)
    try:
        rejected = httpx.post(url, json=body, headers={header: key})
        assert rejected.status_code == 401
        assert "SERVICE_KEY_HASH" not in rejected.text
    finally:
        set_service_key_hash(aws, settings, present=True)
    assert scc_items(aws, settings, "NOPE0002") == []
