"""A booking's whole life in booking time, on the time-skipping test server with the outside world
in memory (tests/workflow_harness.py): a fortnight blocked on the SCC key, months between
booking and charter with reschedules and replacements, the reminders, the trip and the
thank-you; history stays bounded throughout. People act by signal, since the test server does
not skip time while a client waits on an update."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

from charters import contract
from charters.models import AssignCrew, BookingResult, BookingStatus, CrewMember, Reschedule
from charters.starter.book import validate
from tests.workflow_harness import (
    EMAIL_OF,
    GUEST,
    REPLACEMENT,
    Harness,
    answers,
    awaiting_crew,
    closed_as,
    confirm,
    needs_test_server,
    status,
    until,
    wait_status,
)

pytestmark = needs_test_server

HISTORY_BOUND = 5000
# A 120-day booking with 3 reschedules and 2 replacements stays under this many events in one
# run (541 measured: every step a regular activity), far below the continue-as-new limit (2000);
# continue-as-new is tested in test_decisions_changes.py and on the dev server.
LIFE_BOUND = 650
SECOND_REPLACEMENT = CrewMember(
    id="crew-8", name="Robin Hale", email="robin@sailjada.com", hourly_rate=Decimal("25.00")
)


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


async def test_scc_key_missing_for_14_days_then_fixed(wf: Harness) -> None:
    world = wf.world
    world.scc_key = "missing"
    data = await wf.charter(days_ahead=40)
    ref = data["booking_ref"]
    async with wf.worker():
        # Polls at most hourly here (60 s in production: same history, more activity tries).
        handle = await wf.book(data, scc_retry_max_interval_seconds=3600)
        await wait_status(
            handle, lambda s: s.blocked_on == contract.BLOCKED_SCC_KEY_HASH, "blocked"
        )
        for _ in range(14):
            await wf.sleep(days=1)
            assert (await status(handle)).blocked_on == contract.BLOCKED_SCC_KEY_HASH
        blocked_events = await history_length(handle)
        world.scc_key = "ok"
        await wf.sleep(hours=2)
        await awaiting_crew(handle)
        await until(lambda: len(world.mail_of("invite")) == 3, "the crew asked")
        await confirm_all(handle, ["captain-1", "crew-1", "crew-2"])
        events = await history_length(handle)
        await handle.terminate("test over")
    print(f"\n14-day SCC block: {blocked_events} events while blocked, {events} at confirmation")
    assert events < HISTORY_BOUND
    assert blocked_events < 100, "a block of any length costs the same few events"
    assert len(world.calendar_for(ref)) == 1
    assert len(world.scc_for(ref)) == 1
    assert len(world.alerts()) == 1, "operations told once, not daily"


def at_round(wanted: int) -> Callable[[BookingStatus], bool]:
    return lambda s: s.round == wanted


async def test_120_days_three_reschedules_two_replacements_then_the_trip(wf: Harness) -> None:
    world = wf.world
    data = await wf.charter(days_ahead=120)
    ref = data["booking_ref"]
    starts = datetime.fromisoformat(data["starts_at"])
    crew = ["captain-1", "crew-1", "crew-2"]
    async with wf.worker():
        handle = await wf.book(data)
        first_run = handle.result_run_id
        await awaiting_crew(handle)
        await until(lambda: len(world.mail_of("invite")) == 3, "the crew asked")

        await confirm(handle, "crew-1", "decline")
        await wait_status(handle, lambda s: s.blocked_on == "crew-declined", "declined")
        await handle.signal(
            contract.SIGNAL_ASSIGN_CREW, AssignCrew(replaces="crew-1", member=REPLACEMENT)
        )
        crew = ["captain-1", REPLACEMENT.id, "crew-2"]
        await wait_status(handle, lambda s: REPLACEMENT.id in {a.crew_id for a in s.crew}, "in")
        await confirm_all(handle, crew)

        for n in range(3):
            await wf.sleep(days=10)
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
            handle, lambda s: SECOND_REPLACEMENT.id in {a.crew_id for a in s.crew}, "in again"
        )
        await confirm_all(handle, crew)
        live = await status(handle)
        world.photos[world.scc_for(ref)[0].event_id] = ["photos/sunset.jpg"]
        await wf.sleep(days=100)  # past the trip and the thank-you
        latest = wf.client.get_workflow_handle(handle.id, result_type=BookingResult)
        final_run = (await latest.describe()).run_id
        result = await wf.client.get_workflow_handle(
            handle.id, run_id=final_run, result_type=BookingResult
        ).result(follow_runs=False)
        first_events = await history_length(handle, first_run)

    print(f"\n120-day booking: {first_events} events")
    assert result.outcome == "completed" and live.round == 4
    assert first_run == final_run and first_events < LIFE_BOUND
    final_date = f"{starts:%Y-%m-%d}"

    reminders = world.mail_to(GUEST, "guest-reminder")
    assert sorted(m.subject for m in reminders) == [f"guest-reminder: {ref} on {final_date}"] * 2
    thanks = world.mail_to(GUEST, "guest-thank-you")
    assert len(thanks) == 1 and result.album_url and result.album_url in thanks[0].subject

    day_of = world.mail_of("day-of")
    assert sorted(m.to for m in day_of) == sorted(
        [EMAIL_OF["captain-1"], REPLACEMENT.email, SECOND_REPLACEMENT.email]
    )
    assert all(final_date in m.subject for m in day_of)
    album = world.albums[result.album_url.rsplit("/", 1)[1]]
    assert album.photos == 1
    assert world.calendar_for(ref)[0].starts_at == starts.isoformat()
    assert world.scc_for(ref)[0].starts_at == starts.isoformat()


async def test_cancel_two_days_before_departure(wf: Harness) -> None:
    world = wf.world
    data = await wf.charter(days_ahead=10)
    ref = data["booking_ref"]
    async with wf.worker():
        handle = await wf.book(data)
        await awaiting_crew(handle)
        await until(lambda: len(world.mail_of("invite")) == 3, "the crew asked")
        await confirm_all(handle, ["captain-1", "crew-1", "crew-2"])
        await wf.sleep(days=8)  # the 72 h reminder went out, the 24 h one is a day away
        await handle.cancel()
        await wait_status(handle, lambda s: s.stage == "cancelled", "cancelled")
        await wf.sleep(days=3)
        assert await closed_as(handle) == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED
    assert world.calendar_for(ref)[0].status == "cancelled"
    assert world.scc_for(ref)[0].status == "cancelled"
    assert world.pages[validate(data).page_slug].cancelled
    assert len(world.mail_to(GUEST, "guest-reminder")) == 1, "72 h only, never 24 h"
    assert len(world.mail_to(GUEST, "guest-cancelled")) == 1
    assert len(world.mail_of("cancelled")) == 3
