"""A booking's whole life in booking time, on the time-skipping test server: a fortnight blocked
on the SCC key, months between booking and charter with reschedules and replacements, the
reminders, the trip and the thank-you; history stays bounded throughout.

The activities hit the session stack's moto and stand-ins (see test_crew_waits_time_skipping's
docstring for the harness); people act by signal, since the test server does not skip time while
a client waits on an update."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from charters_dev.seed import set_service_key_hash
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

from charters import contract
from charters.models import AssignCrew, BookingResult, BookingStatus, CrewMember, Reschedule
from charters.settings import Settings
from charters.starter.book import start_booking, validate
from charters.worker.wiring import AwsClients
from tests.support import calendar_entries, mail_for, scc_items
from tests.test_crew_waits_time_skipping import (
    REPLACEMENT,
    Skipper,
    answers,
    awaiting_crew,
    confirm,
    invites_sent,
    mail_settles,
    status,
    wait_status,
)

HISTORY_BOUND = 5000
# A 120-day booking with 3 reschedules and 2 replacements stays under this many events in one
# run. Continue-as-new is tested on the dev server (test_continue_as_new.py): where it falls
# right after a change while a client polls the status, the Java time-skipping server loses that
# workflow task and answers no more queries (with local or regular activities alike).
LIFE_BOUND = 400
SECOND_REPLACEMENT = CrewMember(
    id="crew-8", name="Robin Hale", email="robin@sailjada.com", hourly_rate=Decimal("25.00")
)


async def book(ts: Skipper, data: dict[str, Any], **options: Any) -> WorkflowHandle[Any, Any]:
    opts = ts.options(data).model_copy(update=options)
    return await start_booking(ts.client, ts.settings, validate(data), opts)


async def history_length(handle: WorkflowHandle[Any, Any], run_id: str | None = None) -> int:
    run = handle._client.get_workflow_handle(handle.id, run_id=run_id)  # noqa: SLF001
    return len([e async for e in run.fetch_history_events()])


async def confirm_all(handle: WorkflowHandle[Any, Any], members: list[str]) -> None:
    """One answer at a time, each taken before the next is sent: the history's length then
    does not depend on how answers batch into workflow tasks."""
    for member in members:
        await confirm(handle, member)

        def taken(current: BookingStatus, member: str = member) -> bool:
            return answers(current).get(member) == "accepted"

        await wait_status(handle, taken, f"{member} accepted")
    await wait_status(handle, lambda s: s.stage == "confirmed", "confirmed")


async def test_scc_key_missing_for_14_days_then_fixed(
    ts: Skipper, aws: AwsClients, settings: Settings
) -> None:
    data = await ts.charter(days_ahead=40)
    ref = data["booking_ref"]
    set_service_key_hash(aws, settings, present=False)
    try:
        async with ts.worker():
            # Polls at most hourly here (60 s in production: same history, more activity tries).
            handle = await book(ts, data, scc_retry_max_interval_seconds=3600)
            await wait_status(
                handle, lambda s: s.blocked_on == contract.BLOCKED_SCC_KEY_HASH, "blocked"
            )
            for _ in range(14):
                await ts.sleep(days=1)
                assert (await status(handle)).blocked_on == contract.BLOCKED_SCC_KEY_HASH
            blocked_events = await history_length(handle)
            set_service_key_hash(aws, settings, present=True)
            await ts.sleep(hours=2)
            await awaiting_crew(handle)
            await invites_sent(ts.settings, ref)
            await confirm_all(handle, ["captain-1", "crew-1", "crew-2"])
            events = await history_length(handle)
    finally:
        set_service_key_hash(aws, settings, present=True)
    print(f"\n14-day SCC block: {blocked_events} events while blocked, {events} at confirmation")
    assert events < HISTORY_BOUND
    assert blocked_events < 100, "a block of any length costs the same few events"
    assert len(calendar_entries(settings, ref)) == 1
    assert len(scc_items(aws, settings, ref)) == 1
    alerts = [m for m in mail_for(settings, ref) if m.to == [settings.operations_email]]
    assert len(alerts) == 1, "operations told once, not daily"


def at_round(wanted: int) -> Callable[[BookingStatus], bool]:
    return lambda s: s.round == wanted


def local(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%d")


async def test_120_days_three_reschedules_two_replacements_then_the_trip(
    ts: Skipper, aws: AwsClients, settings: Settings
) -> None:
    data = await ts.charter(days_ahead=120)
    ref = data["booking_ref"]
    starts = datetime.fromisoformat(data["starts_at"])
    crew = ["captain-1", "crew-1", "crew-2"]
    async with ts.worker():
        handle = await book(ts, data)
        first_run = handle.result_run_id
        await awaiting_crew(handle)
        await invites_sent(ts.settings, ref)

        await confirm(handle, "crew-1", "decline")
        await wait_status(handle, lambda s: s.blocked_on == "crew-declined", "declined")
        await handle.signal(
            contract.SIGNAL_ASSIGN_CREW, AssignCrew(replaces="crew-1", member=REPLACEMENT)
        )
        crew = ["captain-1", REPLACEMENT.id, "crew-2"]
        await wait_status(handle, lambda s: REPLACEMENT.id in {a.crew_id for a in s.crew}, "in")
        await confirm_all(handle, crew)

        for n in range(3):
            await ts.sleep(days=10)
            starts = starts + timedelta(days=1, hours=1)
            await handle.signal(contract.SIGNAL_RESCHEDULE, Reschedule(starts_at=starts))
            await wait_status(handle, at_round(n + 2), f"round {n + 2}")
            await confirm_all(handle, crew)

        await confirm(handle, "crew-2", "decline")
        await wait_status(handle, lambda s: s.blocked_on == "crew-declined", "declined again")
        await handle.signal(
            contract.SIGNAL_ASSIGN_CREW, AssignCrew(replaces="crew-2", member=SECOND_REPLACEMENT)
        )
        crew = ["captain-1", REPLACEMENT.id, SECOND_REPLACEMENT.id]
        await wait_status(
            handle, lambda s: SECOND_REPLACEMENT.id in {a.crew_id for a in s.crew}, ""
        )
        await confirm_all(handle, crew)
        live = await status(handle)
        aws.s3.put_object(
            Bucket=settings.guest_bucket,
            Key=f"photos/{scc_items(aws, settings, ref)[0]['event_id']}/sunset.jpg",
            Body=b"\xff\xd8\xff photo",
            ContentType="image/jpeg",
        )
        await ts.sleep(days=100)  # past the trip and the thank-you
        latest = ts.client.get_workflow_handle(handle.id, result_type=BookingResult)
        final_run = (await latest.describe()).run_id
        result = await ts.client.get_workflow_handle(
            handle.id, run_id=final_run, result_type=BookingResult
        ).result(follow_runs=False)
        first_events = await history_length(handle, first_run)
        final_events = await history_length(handle, final_run)

    print(f"\n120-day booking: first run {first_events} events, last run {final_events}")
    assert result.outcome == "completed" and live.round == 4
    assert first_run == final_run and first_events < LIFE_BOUND
    final_date = local(starts)

    guest = validate(data).guest.email
    to_guest = await mail_settles(
        lambda: [m for m in mail_for(settings, ref) if m.to == [guest]], "guest mail"
    )
    reminders = [m for m in to_guest if m.subject.startswith("Your charter on")]
    assert (
        sorted(m.subject for m in reminders)
        == [f"Your charter on {final_date}: see you soon ({ref})"] * 2
    )
    thanks = [m for m in to_guest if m.subject.startswith("Thank you")]
    assert len(thanks) == 1 and result.album_url and result.album_url in thanks[0].body

    day_of = [m for m in mail_for(settings, ref) if m.subject.startswith("Today:")]
    assert sorted(r for m in day_of for r in m.to) == sorted(
        ["captain@sailjada.com", REPLACEMENT.email, SECOND_REPLACEMENT.email]
    )
    assert all("$" not in m.body for m in day_of), "no money in the day-of reminder"
    album = aws.s3.get_object(
        Bucket=settings.guest_bucket, Key=f"guest-pages/{result.album_url.rsplit('/', 1)[1]}.html"
    )
    assert b"sunset.jpg" in album["Body"].read()


async def test_cancel_two_days_before_departure(
    ts: Skipper, aws: AwsClients, settings: Settings
) -> None:
    data = await ts.charter(days_ahead=10)
    ref = data["booking_ref"]
    async with ts.worker():
        handle = await book(ts, data)
        await awaiting_crew(handle)
        await invites_sent(ts.settings, ref)
        await confirm_all(handle, ["captain-1", "crew-1", "crew-2"])
        await ts.sleep(days=8)  # the 72 h reminder went out, the 24 h one is a day away
        await handle.cancel()
        await wait_status(handle, lambda s: s.stage == "cancelled", "cancelled")
        await ts.sleep(days=3)
    assert calendar_entries(settings, ref)[0]["status"] == "cancelled"
    assert scc_items(aws, settings, ref)[0]["status"] == "cancelled"
    guest = validate(data).guest.email
    sent = [m.subject for m in mail_for(settings, ref) if m.to == [guest]]
    assert len(sent) == 1 and sent[0].startswith("Your charter on"), "72 h only, never 24 h"
    told = [m for m in mail_for(settings, ref) if m.subject.startswith("Cancelled:")]
    assert len(told) == 3
    history = [e async for e in handle.fetch_history_events()]
    assert history[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED
