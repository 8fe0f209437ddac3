"""Partial failures resume cleanly: the missing SERVICE_KEY_HASH, CloudFront stripping the key,
bad input, duplicate bookings; each effect counted in the emulated systems themselves."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from charters_dev.seed import set_service_key_hash
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from typer.testing import CliRunner

from charters import contract
from charters.actions import settled
from charters.settings import Settings
from charters.starter.cli import app
from charters.worker.main import build_worker
from charters.worker.wiring import AwsClients
from tests.conftest import Booker
from tests.support import (
    booking_data,
    calendar_entries,
    invalidations_for,
    mail_for,
    new_ref,
    scc_items,
    write_booking,
)

runner = CliRunner()


@pytest.fixture
def hash_removed(aws: AwsClients, settings: Settings) -> Iterator[None]:
    set_service_key_hash(aws, settings, present=False)
    yield
    set_service_key_hash(aws, settings, present=True)


def lambda_env(aws: AwsClients, settings: Settings) -> dict[str, str]:
    config = aws.lambda_.get_function_configuration(FunctionName=settings.scc_lambda_function)
    return dict(config["Environment"]["Variables"])


async def search_attributes(client: Client, workflow_id: str) -> dict[str, Any]:
    desc = await client.get_workflow_handle(workflow_id).describe()
    return {k.name: v for k, v in desc.typed_search_attributes}


def assert_exactly_once(aws: AwsClients, settings: Settings, ref: str, slug: str) -> None:
    assert len(calendar_entries(settings, ref)) == 1
    assert len(scc_items(aws, settings, ref)) == 1
    invites = [m for m in mail_for(settings, ref) if m.magic_links()]
    assert sorted(r for m in invites for r in m.to) == [
        "alex@sailjada.com",
        "captain@sailjada.com",
        "jordan@sailjada.com",
    ]
    assert len(invalidations_for(aws, settings, slug)) == 1
    listing = aws.s3.list_objects_v2(Bucket=settings.guest_bucket, Prefix=f"guest-pages/{slug}")
    assert listing["KeyCount"] == 1


@pytest.mark.usefixtures("hash_removed")
async def test_missing_key_hash_blocks_then_operator_fix_resumes(
    booker: Booker,
    client: Client,
    aws: AwsClients,
    settings: Settings,
) -> None:
    data = booking_data()
    ref = data["booking_ref"]
    handle = await booker.start(data)
    status = await booker.wait_blocked(handle.id, contract.BLOCKED_SCC_KEY_HASH)
    assert "SERVICE_KEY_HASH" in (status.blocked_reason or "")
    assert "missing" in (status.blocked_reason or "")
    attrs = await search_attributes(client, handle.id)
    assert attrs["BlockedOn"] == contract.BLOCKED_SCC_KEY_HASH
    await asyncio.sleep(3)  # the alert goes out and the poll starts
    before = len([e async for e in handle.fetch_history_events()])
    await asyncio.sleep(5)  # the poll retries inside one activity: history does not grow
    assert len(calendar_entries(settings, ref)) == 1
    assert scc_items(aws, settings, ref) == []
    assert len([e async for e in handle.fetch_history_events()]) == before

    shown = await asyncio.to_thread(runner.invoke, app, ["status", handle.id])
    assert "Blocked on scc-service-key-hash" in shown.output
    assert "charters ops fix-scc-key-hash" in shown.output.replace("\n", " ")

    fixed = await asyncio.to_thread(runner.invoke, app, ["ops", "fix-scc-key-hash"])
    assert fixed.exit_code == 0, fixed.output
    await booker.answer_all(ref)
    result = await settled(handle, 60)
    assert result.outcome == "confirmed"
    assert_exactly_once(aws, settings, ref, data_slug(data))
    assert "BlockedOn" not in await search_attributes(client, handle.id)


@pytest.mark.usefixtures("hash_removed")
async def test_missing_key_hash_repaired_by_approval_keeps_other_variables(
    booker: Booker,
    client: Client,
    aws: AwsClients,
    settings: Settings,
) -> None:
    before = lambda_env(aws, settings)
    assert "SERVICE_KEY_HASH" not in before and before["TABLE_NAME"] == settings.events_table
    data = booking_data()
    handle = await booker.start(data)
    await booker.wait_blocked(handle.id, contract.BLOCKED_SCC_KEY_HASH)
    approved = await asyncio.to_thread(runner.invoke, app, ["approve-repair", handle.id])
    assert approved.exit_code == 0, approved.output
    await booker.answer_all(data["booking_ref"])
    result = await settled(handle, 60)
    assert result.outcome == "confirmed"
    after = lambda_env(aws, settings)
    assert {k: v for k, v in after.items() if k != "SERVICE_KEY_HASH"} == before
    assert len(after["SERVICE_KEY_HASH"]) == 64
    assert_exactly_once(aws, settings, data["booking_ref"], data_slug(data))
    assert "BlockedOn" not in await search_attributes(client, handle.id)
    history = [e async for e in handle.fetch_history_events()]
    key = aws.secretsmanager.get_secret_value(SecretId=settings.secret_scc_service_key)[
        "SecretString"
    ]
    assert not any(key in str(e) or after["SERVICE_KEY_HASH"] in str(e) for e in history)


async def test_header_stripped_by_cloudfront_blocks_naming_the_fix(
    client: Client,
    settings: Settings,
    booker: Booker,
) -> None:
    """A worker configured with SCC's CloudFront URL: the key never arrives; no retry can fix it."""
    behind_cf = settings.model_copy(
        update={
            "task_queue": "charters-behind-cloudfront",
            "scc_api_url": f"http://127.0.0.1:{settings.scc_cloudfront_port}/prod",
        }
    )
    data = booking_data()
    with ThreadPoolExecutor(8) as pool:
        async with build_worker(client, behind_cf, pool):
            from charters.starter.book import start_booking, validate

            handle = await start_booking(client, behind_cf, validate(data))
            status = await booker.wait_blocked(handle.id, "scc-event")
            await handle.cancel()
    reason = status.blocked_reason or ""
    assert "scc_event" in reason and "API Gateway" in reason
    assert "origin request policy" in reason
    assert f"charters retry {handle.id} --step scc-event" in (status.blocked_fix or "")
    assert status.steps["scc_event"] == "blocked" and status.stage == "provisioning"


def data_slug(data: dict[str, Any]) -> str:
    from charters.starter.book import validate

    return validate(data).page_slug


BAD_BOOKINGS: list[tuple[str, dict[str, Any], str]] = [
    ("missing field", {"location": None}, "location"),
    ("date in the past", {"starts_at": "2020-05-30T09:00:00"}, "starts_at: must be in the future"),
    ("negative money", {"money": {"gross": "-1.00", "fees": {}}}, "money.gross"),
    ("non-numeric money", {"money": {"gross": "lots", "fees": {}}}, "money.gross"),
    ("money with fractions of a cent", {"money": {"gross": "1.001", "fees": {}}}, "money.gross"),
    ("duration 0", {"duration_hours": "0"}, "duration_hours"),
    ("duration over 24 h", {"duration_hours": "25"}, "duration_hours"),
    (
        "crew without email",
        {"crew": [{"id": "c1", "name": "A", "hourly_rate": "25"}]},
        "crew.0.email",
    ),
    (
        "duplicate crew id",
        {
            "crew": [
                {"id": "captain-1", "name": "A", "email": "a@sailjada.com", "hourly_rate": "25"}
            ]
        },
        "ids must be unique",
    ),
    ("slug with slash", {"slug": "a/b"}, "slug"),
    ("slug with dots", {"slug": ".."}, "slug"),
    ("slug upper case", {"slug": "May-30"}, "slug"),
    ("oversized location", {"location": "x" * 500}, "location"),
    ("bad booking ref", {"booking_ref": "xh-1"}, "booking_ref"),
    ("unknown time zone", {"timezone": "Mars/Olympus"}, "timezone"),
    ("unknown field", {"revenue": "840.75"}, "revenue"),
]


@pytest.mark.parametrize(
    ("case", "change", "named"), BAD_BOOKINGS, ids=[c[0] for c in BAD_BOOKINGS]
)
def test_bad_booking_rejected_by_cli_before_anything_starts(
    case: str,
    change: dict[str, Any],
    named: str,
    tmp_path: Path,
    settings: Settings,
) -> None:
    data = booking_data()
    data.update(change)
    data = {k: v for k, v in data.items() if v is not None}
    shown = runner.invoke(app, ["book", str(write_booking(tmp_path, data))])
    assert shown.exit_code == 2, shown.output
    text = " ".join(shown.output.split())
    assert "invalid booking" in text and named in text, text
    assert calendar_entries(settings, str(data.get("booking_ref"))) == []


async def test_workflow_validates_again_and_fails_non_retryably(
    client: Client,
    settings: Settings,
    booker: Booker,
) -> None:
    from charters.models import BookingOptions, CharterBookingInput

    data = booking_data(duration_hours="0")
    handle = await client.start_workflow(
        contract.WORKFLOW_NAME,
        CharterBookingInput(booking=data, options=BookingOptions(guest_page_url="https://x/g/y")),
        id=contract.workflow_id_for(data["booking_ref"]),
        task_queue=settings.task_queue,
    )
    with pytest.raises(WorkflowFailureError) as failure:
        await settled(handle, 30)
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError) and cause.non_retryable
    assert "duration_hours" in cause.message
    assert calendar_entries(settings, data["booking_ref"]) == []
    status = await booker.status(handle.id)  # what the operator sees: the stage and the rule
    assert status.stage == "failed" and "duration_hours" in (status.error or ""), status


async def test_html_in_guest_name_is_escaped_everywhere(
    booker: Booker,
    aws: AwsClients,
    settings: Settings,
) -> None:
    evil = '<script>alert("x")</script> O\'Brien & Co'
    data = booking_data(guest={"name": evil, "email": "guest@example.com", "party_size": 2})
    result = await booker.book_and_confirm(data)
    html = aws.s3.get_object(Bucket=settings.guest_bucket, Key=result.guest_page_key)["Body"].read()
    assert b"<script>alert" not in html and b"&lt;script&gt;alert" in html
    for mail in mail_for(settings, data["booking_ref"]):
        assert "<script>alert" not in mail.body


async def test_same_booking_twice_is_refused_naming_the_workflow(
    booker: Booker,
    tmp_path: Path,
    hash_removed: None,
) -> None:
    data = booking_data(booking_ref=new_ref("DUP"))
    path = write_booking(tmp_path, data)
    first = await asyncio.to_thread(runner.invoke, app, ["book", str(path)])
    assert first.exit_code == 0, first.output
    second = await asyncio.to_thread(runner.invoke, app, ["book", str(path)])
    assert second.exit_code == 8, "exit 8: the booking exists"
    assert f"charter-{data['booking_ref']}" in " ".join(second.output.split())
    await booker.client.get_workflow_handle(f"charter-{data['booking_ref']}").terminate("test done")
