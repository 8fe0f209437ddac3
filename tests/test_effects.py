"""Creates that cannot duplicate, compensations that find effects by key, and attempts that stop
sending at their deadline: the calendar and SCC activities against the real stand-ins (over
HTTP, SCC's events in moto's DynamoDB), the fault proxy in front where a call must be slow."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from charters_dev.faultproxy import FaultProxy
from charters_dev.isolated import sample_charter
from temporalio.exceptions import ApplicationError

from charters import errors
from charters.activities import deadline
from charters.models import (
    CalendarCancelRequest,
    CalendarEntryRequest,
    CalendarStatusRequest,
    SccCancelRequest,
    SccEventRequest,
    SccUpdateRequest,
)
from charters.starter.book import validate
from charters.worker.wiring import aws_client
from tests.aws_moto import client, settings_for
from tests.aws_moto import moto_url as moto_url
from tests.standins_live import (
    Standins,
    calendar_standin,
    scc_standin,
    seed,
    served,
    unique_names,
)
from tests.support import attempt, new_ref, scc_items


@pytest.fixture(scope="module")
def standins(moto_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standins]:
    tmp = tmp_path_factory.mktemp("effects")
    settings = settings_for(moto_url, tmp, **unique_names())
    seed(settings)
    store = tmp / "calendar.json"
    with served(calendar_standin(settings, store)) as cal, served(scc_standin(settings)) as scc:
        yield Standins(settings, cal, scc, store)


def entries(standins: Standins, booking_ref: str) -> list[dict[str, Any]]:
    found = json.loads(standins.store_path.read_text()) if standins.store_path.exists() else {}
    return [e for e in found.values() if e.get("booking_ref") == booking_ref]


def events(standins: Standins, booking_ref: str) -> list[dict[str, Any]]:
    return scc_items(
        SimpleNamespace(dynamodb=client(standins.settings, "dynamodb")),
        standins.settings,
        booking_ref,
    )


def calendar_request(ref: str) -> CalendarEntryRequest:
    return CalendarEntryRequest(
        idempotency_key=f"charter-{ref}:calendar", booking=validate(sample_charter(ref))
    )


def scc_request(ref: str) -> SccEventRequest:
    booking = validate(sample_charter(ref))
    return SccEventRequest(
        idempotency_key=f"charter-{ref}:scc", charter=booking.crew_view("https://x/g/s")
    )


# ---- the stand-ins hold the services to the Idempotency-Key contract -----------------------


def test_a_create_without_a_key_is_refused(standins: Standins) -> None:
    ref = new_ref("NOKEY")
    body = calendar_request(ref).booking
    from charters.activities.calendar import calendar_body

    answer = httpx.post(
        f"{standins.calendar_url}/calendar",
        json=calendar_body(body, "k", "tentative"),
        headers=standins.calendar_headers(),
    )
    assert answer.status_code == 400 and "Idempotency-Key" in answer.json()["error"]
    from charters.activities.scc import scc_body

    answer = httpx.post(
        f"{standins.scc_url}/prod/events",
        json=scc_body(scc_request(ref).charter, "k"),
        headers=standins.scc_headers(),
    )
    assert answer.status_code == 400 and "Idempotency-Key" in answer.json()["message"]
    assert entries(standins, ref) == [] and events(standins, ref) == []


def test_the_auth_checks_come_first(standins: Standins) -> None:
    answer = httpx.post(f"{standins.calendar_url}/calendar", json={}, headers={})
    assert answer.status_code == 401
    answer = httpx.post(f"{standins.scc_url}/prod/events", json={}, headers={})
    assert answer.status_code == 401


def test_a_repeated_key_returns_the_first_entry_and_creates_nothing(standins: Standins) -> None:
    ref = new_ref("REPEAT")
    calendar = standins.calendar()
    first = attempt().run(calendar.create_calendar_entry, calendar_request(ref))
    again = attempt().run(calendar.create_calendar_entry, calendar_request(ref))
    assert first.created and not again.created and again.entry_id == first.entry_id
    assert len(entries(standins, ref)) == 1

    scc = standins.scc()
    event = attempt().run(scc.create_scc_event, scc_request(ref))
    repeat = attempt().run(scc.create_scc_event, scc_request(ref))
    assert event.created and not repeat.created and repeat.event_id == event.event_id
    assert len(events(standins, ref)) == 1


def test_a_key_survives_a_restart_of_the_standins(standins: Standins) -> None:
    """A fresh stand-in over the same calendar file and table answers the key as before."""
    ref = new_ref("RESTART")
    made = attempt().run(standins.calendar().create_calendar_entry, calendar_request(ref))
    event = attempt().run(standins.scc().create_scc_event, scc_request(ref))
    settings = standins.settings
    with (
        served(calendar_standin(settings, standins.store_path)) as cal,
        served(scc_standin(settings)) as scc,
    ):
        again = attempt().run(standins.calendar(cal).create_calendar_entry, calendar_request(ref))
        repeat = attempt().run(standins.scc(scc).create_scc_event, scc_request(ref))
    assert (again.entry_id, again.created) == (made.entry_id, False)
    assert (repeat.event_id, repeat.created) == (event.event_id, False)
    assert len(entries(standins, ref)) == 1 and len(events(standins, ref)) == 1


def test_overlapping_attempts_of_one_key_make_one_entry_and_one_event(standins: Standins) -> None:
    """Attempts that overlap (a timed-out thread still sending while its retry runs, or a
    worker taking over a lost task) race on the key, not on a look-up: one effect."""
    ref = new_ref("RACE")
    calendar, scc = standins.calendar(), standins.scc()
    start = threading.Barrier(8)

    def create(i: int) -> str:
        start.wait()
        if i % 2:
            return attempt().run(calendar.create_calendar_entry, calendar_request(ref)).entry_id
        return attempt().run(scc.create_scc_event, scc_request(ref)).event_id

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(create, range(8)))
    assert len({ids[i] for i in range(1, 8, 2)}) == 1
    assert len({ids[i] for i in range(0, 8, 2)}) == 1
    assert len(entries(standins, ref)) == 1 and len(events(standins, ref)) == 1


# ---- compensation finds effects by key -----------------------------------------------------


def test_cancel_finds_an_entry_and_an_event_whose_ids_were_never_recorded(
    standins: Standins,
) -> None:
    """An attempt created them and its answer was lost: the workflow holds no id, only the
    key, and the cancellation still finds and cancels each."""
    ref = new_ref("LOST")
    req, sreq = calendar_request(ref), scc_request(ref)
    from charters.activities.calendar import calendar_body
    from charters.activities.scc import scc_body

    httpx.post(
        f"{standins.calendar_url}/calendar",
        json=calendar_body(req.booking, req.idempotency_key, "tentative"),
        headers=standins.calendar_headers(req.idempotency_key),
    ).raise_for_status()
    httpx.post(
        f"{standins.scc_url}/prod/events",
        json=scc_body(sreq.charter, sreq.idempotency_key),
        headers=standins.scc_headers(sreq.idempotency_key),
    ).raise_for_status()

    cancel = CalendarCancelRequest(idempotency_key=req.idempotency_key, booking_ref=ref)
    done = attempt().run(standins.calendar().cancel_calendar_entry, cancel)
    (entry,) = entries(standins, ref)
    assert done.found == [entry["entry_id"]] and entry["status"] == "cancelled"

    scc_cancel = SccCancelRequest(idempotency_key=sreq.idempotency_key, charter=sreq.charter)
    gone = attempt().run(standins.scc().cancel_scc_event, scc_cancel)
    (event,) = events(standins, ref)
    assert gone.found == [event["event_id"]] and event["status"] == "cancelled"

    again = attempt().run(standins.calendar().cancel_calendar_entry, cancel)
    assert again.found == done.found
    (entry,) = entries(standins, ref)
    assert len(entry["history"]) == 1  # a repeat found it cancelled and wrote nothing


def test_cancel_with_nothing_to_find_is_done(standins: Standins) -> None:
    ref = new_ref("NONE")
    cancel = CalendarCancelRequest(
        idempotency_key=f"charter-{ref}:calendar", booking_ref=ref, entry_id="cal-gone0000000"
    )
    assert attempt().run(standins.calendar().cancel_calendar_entry, cancel).found == []
    sreq = scc_request(ref)
    scc_cancel = SccCancelRequest(
        idempotency_key=sreq.idempotency_key, event_id="evt-gone000000000", charter=sreq.charter
    )
    assert attempt().run(standins.scc().cancel_scc_event, scc_cancel).found == []


def test_an_update_of_a_gone_target_is_target_gone(standins: Standins) -> None:
    """A retry cannot bring a deleted entry back: non-retryable, typed, with a message."""
    update = CalendarStatusRequest(entry_id="cal-gone0000000", status="confirmed")
    with pytest.raises(ApplicationError) as raised:
        attempt().run(standins.calendar().update_calendar_entry, update)
    assert raised.value.type == errors.TARGET_GONE and raised.value.non_retryable
    assert "cal-gone0000000" in raised.value.message and "no longer exists" in raised.value.message
    scc_update = SccUpdateRequest(
        event_id="evt-gone000000000",
        status="rescheduled",
        charter=scc_request(new_ref("GONE")).charter,
    )
    with pytest.raises(ApplicationError) as raised:
        attempt().run(standins.scc().update_scc_event, scc_update)
    assert raised.value.type == errors.TARGET_GONE and raised.value.non_retryable


# ---- no attempt sends after its deadline ---------------------------------------------------


@pytest.fixture
def slow_calendar(standins: Standins) -> Iterator[str]:
    """The calendar behind the fault proxy: every answer held 4 s after the calendar acted."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    proxy = FaultProxy(0, standins.calendar_url, "error=1,kinds=slow,slow=4s", name="slow")
    port = asyncio.run_coroutine_threadsafe(proxy.start(), loop).result(10)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(proxy.aclose(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_a_slow_answer_is_abandoned_before_the_start_to_close(
    standins: Standins, slow_calendar: str
) -> None:
    """The attempt gives up inside its 2 s timeout (not after the 20 s the client would wait),
    and its retry gets the entry the slow attempt made: one entry."""
    ref = new_ref("SLOW")
    began = time.monotonic()
    with pytest.raises(ApplicationError) as raised:
        attempt(timeout=2.0).run(
            standins.calendar(slow_calendar).create_calendar_entry, calendar_request(ref)
        )
    assert time.monotonic() - began < 2.0
    assert raised.value.type == errors.UPSTREAM_UNAVAILABLE and not raised.value.non_retryable
    retry = attempt().run(standins.calendar().create_calendar_entry, calendar_request(ref))
    assert not retry.created and len(entries(standins, ref)) == 1


def test_no_request_starts_when_the_attempt_is_nearly_over(standins: Standins) -> None:
    ref = new_ref("LATE")
    with pytest.raises(ApplicationError) as raised:
        attempt(timeout=5.0, spent=4.9).run(
            standins.calendar().create_calendar_entry, calendar_request(ref)
        )
    assert raised.value.type == errors.ATTEMPT_DEADLINE and not raised.value.non_retryable
    assert entries(standins, ref) == []


def test_http_timeouts_end_before_the_deadline() -> None:
    default = httpx.Timeout(20.0, connect=5.0)

    def phases() -> httpx.Timeout:
        return deadline.http_timeout(default, "x")

    assert phases() == default  # outside an activity: the client's own
    short = attempt(timeout=3.0).run(phases)
    assert short.connect is not None and short.read is not None
    assert short.pool is not None and short.write is not None
    assert short.pool + short.connect + short.write + short.read <= 3.0
    assert attempt(timeout=300.0).run(phases) == default


def test_a_boto3_request_that_would_outlast_the_attempt_is_not_sent(standins: Standins) -> None:
    """The worker's clients refuse a request (botocore's own retry included) whose worst case
    no longer fits before the deadline: raised before a byte leaves."""
    ddb = deadline.guard_boto3(aws_client(standins.settings, "dynamodb"), request_seconds=2.0)
    key = {"event_id": {"S": f"guard-{new_ref()}"}}

    def put() -> None:
        ddb.put_item(TableName=standins.settings.events_table, Item=key)

    with pytest.raises(ApplicationError) as raised:
        attempt(timeout=1.5).run(put)
    assert raised.value.type == errors.ATTEMPT_DEADLINE
    table = standins.settings.events_table
    assert "Item" not in client(standins.settings, "dynamodb").get_item(TableName=table, Key=key)
    attempt(timeout=30.0).run(put)
    put()  # outside an activity there is no deadline
