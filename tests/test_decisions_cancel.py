"""A cancel that lands while a step is in flight, by update (`charters cancel`) and natively (the
Web UI, `temporal workflow cancel`), at every activity of provisioning and publishing.

What a user relies on, counted in the in-memory world after the booking closed: nothing is left
live (the calendar entry and SCC event cancelled, the guest page is the cancellation notice),
each compensation ran at most once, everyone who was asked is told once and the guest once, and
the run closed the way the request asked (an update: COMPLETED with outcome `cancelled`; a
native cancel: CANCELED). Every held call is let finish after the cancel, as a sync activity
blocked in an HTTP call would: its effect lands late, and compensation must still undo it, which
it can only do if the group waited for it.

Every activity running when the cancel comes is held: the Java test server refuses a workflow
task that asks to cancel an activity which completed meanwhile ("ACTIVITY_UNKNOWN"), where the
real server records the request and ignores it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import CancelledError

from charters import contract
from charters.contract import Activity
from charters.models import BookingResult, CancelBooking, Reschedule, Verdict
from charters.starter.book import validate
from tests.workflow_harness import (
    EMAIL_OF,
    GUEST,
    Harness,
    awaiting_crew,
    closed_as,
    confirm,
    events,
    needs_test_server,
    result_of,
    status,
    until,
)
from tests.workflow_world import World

pytestmark = needs_test_server

Mode = Literal["update", "native"]

# Each point, with an activity of the other branch of its group held beside it: the cancel must
# cancel and await both before compensation runs.
POINTS = [
    (Activity.CREATE_CALENDAR_ENTRY, Activity.CHECK_SCC_SERVICE_KEY),
    (Activity.CHECK_SCC_SERVICE_KEY, Activity.CREATE_CALENDAR_ENTRY),
    (Activity.CREATE_SCC_EVENT, Activity.CREATE_CALENDAR_ENTRY),
    (Activity.REDACT_SCC_REVENUE, Activity.PUBLISH_GUEST_PAGE),
    (Activity.PUBLISH_GUEST_PAGE, Activity.REDACT_SCC_REVENUE),
    (Activity.INVALIDATE_GUEST_PAGE, Activity.REDACT_SCC_REVENUE),
]


async def cancel(handle: WorkflowHandle[Any, Any], mode: Mode) -> None:
    if mode == "update":
        verdict = await handle.execute_update(
            contract.UPDATE_CANCEL_BOOKING,
            CancelBooking(reason="guest cancelled"),
            result_type=Verdict,
        )
        assert verdict.recorded, verdict
    else:
        await handle.cancel()


async def cancel_requests(handle: WorkflowHandle[Any, Any]) -> int:
    return sum(
        e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED
        for e in await events(handle)
    )


async def closes_as_asked(handle: WorkflowHandle[Any, BookingResult], mode: Mode) -> None:
    """An update's cancel completes with outcome `cancelled`; a native one ends CANCELED."""
    if mode == "update":
        result = await result_of(handle)
        assert result.outcome == "cancelled"
        assert await closed_as(handle) == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
    else:
        with pytest.raises(WorkflowFailureError) as failure:
            await result_of(handle)
        assert isinstance(failure.value.cause, CancelledError)
        assert await closed_as(handle) == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED


def assert_nothing_live(world: World, data: dict[str, Any]) -> None:
    """Counted in the world: every effect of the booking undone, each undo at most once,
    everyone who was asked told once, the guest told once."""
    ref = data["booking_ref"]
    slug = validate(data).page_slug
    calendar = world.calendar_for(ref)
    assert len(calendar) <= 1 and all(e.status == "cancelled" for e in calendar), calendar
    assert world.effects["calendar.cancel"] == len(calendar)
    scc = world.scc_for(ref)
    assert len(scc) <= 1 and all(e.status == "cancelled" for e in scc), scc
    assert world.effects["scc.cancel"] == len(scc)
    page = world.pages.get(slug)
    assert page is None or page.cancelled, "the page shows the cancellation notice"
    assert world.effects["page.notice"] <= 1
    for name in (Activity.CANCEL_CALENDAR_ENTRY, Activity.CANCEL_SCC_EVENT):
        assert world.calls[name] <= 1, f"{name} ran {world.calls[name]} times"
    for member, address in EMAIL_OF.items():
        invited = world.mail_to(address, "invite")
        told = world.mail_to(address, "cancelled")
        assert len(told) == (1 if invited else 0), (member, invited, told)
    assert len(world.mail_to(GUEST, "guest-cancelled")) == 1, "the guest is told once"


@pytest.mark.parametrize("mode", ["update", "native"])
@pytest.mark.parametrize(("point", "sibling"), POINTS, ids=[p.value for p, _ in POINTS])
async def test_cancel_while_a_step_is_in_flight(
    wf: Harness, point: Activity, sibling: Activity, mode: Mode
) -> None:
    world = wf.world
    held, beside = world.hold(point), world.hold(sibling)
    data = await wf.charter()
    async with wf.worker():
        handle = await wf.book(data, local_activities=False)
        await held.started()
        await beside.started()
        await cancel(handle, mode)
        await until(lambda: cancel_requests(handle), "the held steps asked to cancel")
        held.release()
        beside.release()
        await closes_as_asked(handle, mode)
        final = await status(handle)
    assert await cancel_requests(handle) == 2, "both branches of the group were cancelled"
    assert_nothing_live(world, data)
    assert final.stage == "cancelled" and final.outcome == "cancelled"
    assert final.blocks == [] and world.alerts() == []


@pytest.mark.skip(
    reason="flaky on the Java time-skipping server: whether the invitations are scheduled before "
    "the cancel is taken depends on load, and the server refuses a task that cancels an activity "
    "that completed meanwhile; the same interleaving runs on the dev server in "
    "test_interleaving.py (create_calendar_entry × native)"
)
async def test_cancel_while_a_local_step_is_in_flight(wf: Harness) -> None:
    """Local-first steps: a cancel that comes while a local attempt runs is taken once the
    attempt has ended (the workflow task is open meanwhile); what it made is then undone."""
    world = wf.world
    held = world.hold(Activity.CREATE_CALENDAR_ENTRY)
    # The workflow task stays open while the local step runs, so the setup goes on up to the
    # invitations (regular activities) before the cancel is taken: held too, as every activity
    # running at a cancel must be on the test server (see the module docstring).
    invitations = world.hold(Activity.SEND_CREW_EMAIL, times=None)
    data = await wf.charter()
    async with wf.worker():
        handle = await wf.book(data, local_activities=True)
        await held.started()
        await handle.cancel()
        await wait_cancel_recorded(handle)
        held.release()
        await invitations.started()
        invitations.release()
        await closes_as_asked(handle, "native")
    assert_nothing_live(world, data)
    assert world.calendar_for(data["booking_ref"]), "the held create landed, and was undone"


@pytest.mark.parametrize("mode", ["update", "native"])
async def test_cancel_after_the_crew_was_asked_tells_each_once(wf: Harness, mode: Mode) -> None:
    world = wf.world
    data = await wf.charter()
    async with wf.worker():
        handle = await wf.book(data)
        await awaiting_crew(handle)
        await until(lambda: len(world.mail_of("invite")) == 3, "three invitations")
        await cancel(handle, mode)
        await closes_as_asked(handle, mode)
        final = await status(handle)
    assert_nothing_live(world, data)
    assert len(world.mail_of("cancelled")) == 3
    assert final.steps["notify_crew"] == "compensated"
    described = await handle.describe()
    assert described.typed_search_attributes.get(contract.SA_CREW_PENDING) == 0
    assert described.typed_search_attributes.get(contract.SA_BOOKING_STAGE) == "cancelled"


async def test_a_cancel_while_create_scc_event_is_in_flight_is_no_scc_key_block(
    wf: Harness,
) -> None:
    """The cancel reaches the SCC step as the activity's cancellation, never as SCC refusing
    our key: no `scc-service-key-hash` block, no alert, the booking closes CANCELED."""
    world = wf.world
    held = world.hold(Activity.CREATE_SCC_EVENT, honour_cancel=True)
    data = await wf.charter()
    async with wf.worker():
        handle = await wf.book(data, local_activities=False)
        await held.started()
        await handle.cancel()
        await until(lambda: cancel_requests(handle), "the SCC step asked to cancel")
        held.release()
        await closes_as_asked(handle, "native")
        final = await status(handle)
    assert world.alerts() == []
    assert world.calls[Activity.AWAIT_SCC_SERVICE_KEY] == 0
    assert not any(b.on == contract.BLOCKED_SCC_KEY_HASH for b in final.blocks)
    assert final.steps["scc_key"] == "done"
    assert_nothing_live(world, data)


@pytest.mark.parametrize("first", ["update", "native"])
async def test_a_second_native_cancel_does_not_cut_compensation_short(
    wf: Harness, first: Mode
) -> None:
    world = wf.world
    held = world.hold(Activity.CANCEL_CALENDAR_ENTRY)
    data = await wf.charter()
    async with wf.worker():
        handle = await wf.book(data, local_activities=False)
        await awaiting_crew(handle)
        await until(lambda: len(world.mail_of("invite")) == 3, "three invitations")
        await cancel(handle, first)
        await held.started()
        await handle.cancel()
        await wait_cancel_recorded(handle)
        held.release()
        await closes_as_asked(handle, "native")
        final = await status(handle)
    assert_nothing_live(world, data)
    assert final.stage == "cancelled"
    assert (
        sorted(final.steps[s] for s in ("calendar", "scc_event", "guest_page"))
        == ["compensated"] * 3
    )


async def wait_cancel_recorded(handle: WorkflowHandle[Any, Any]) -> None:
    await until(
        lambda: _has(handle, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED),
        "the native cancel recorded",
    )


async def _has(handle: WorkflowHandle[Any, Any], kind: EventType.ValueType) -> bool:
    return any(e.event_type == kind for e in await events(handle))


@pytest.mark.parametrize("mode", ["update", "native"])
async def test_cancel_while_the_calendar_confirmation_is_in_flight(wf: Harness, mode: Mode) -> None:
    """Everyone accepted: the captain's summary and the calendar's `confirmed` go out side by
    side (both held). A cancel meanwhile waits for them, so `confirmed` never lands after
    `cancelled`."""
    world = wf.world
    confirmation = world.hold(Activity.UPDATE_CALENDAR_ENTRY)
    summary = world.hold(Activity.SEND_CAPTAIN_SUMMARY)
    data = await wf.charter()
    async with wf.worker():
        handle = await wf.book(data, local_activities=False)
        await awaiting_crew(handle)
        for member in ("captain-1", "crew-1", "crew-2"):
            await confirm(handle, member)
        await confirmation.started()
        await summary.started()
        await cancel(handle, mode)
        await until(lambda: at_least(cancel_requests(handle), 2), "both asked to cancel")
        confirmation.release()
        summary.release()
        await closes_as_asked(handle, mode)
    assert_nothing_live(world, data)
    assert world.effects["calendar.confirmed"] == 1, "the held confirmation landed, first"


async def test_cancel_while_the_invitations_are_in_flight_tells_who_got_one(wf: Harness) -> None:
    """The invitations were in flight when the cancel came and landed after it: each member
    got one, so each is told of the cancel, once."""
    world = wf.world
    held = world.hold(Activity.SEND_CREW_EMAIL, times=3)
    data = await wf.charter()
    async with wf.worker():
        handle = await wf.book(data, local_activities=False)
        await until(lambda: held.held == 3, "three invitations in flight")
        await cancel(handle, "update")
        await until(lambda: at_least(cancel_requests(handle), 3), "the invitations cancelled")
        held.release()
        await closes_as_asked(handle, "update")
    assert_nothing_live(world, data)
    assert len(world.mail_of("invite")) == 3


async def test_invitations_cancelled_in_flight_are_not_followed_by_a_cancel_notice(
    wf: Harness,
) -> None:
    """The invitations hear of the cancel (by heartbeat) and stop before sending: the email
    ledger says they were never sent, and nobody gets a cancel notice for an invitation they
    never had."""
    world = wf.world
    held = world.hold(Activity.SEND_CREW_EMAIL, times=3, honour_cancel=True)
    data = await wf.charter()
    async with wf.worker():
        handle = await wf.book(data, local_activities=False)
        await until(lambda: held.held == 3, "three invitations in flight")
        await cancel(handle, "update")
        await until(lambda: at_least(cancel_requests(handle), 3), "the invitations cancelled")
        held.heartbeat()
        await until(lambda: held.cancels_seen == 3, "the invitations stopped")
        await closes_as_asked(handle, "update")
    assert_nothing_live(world, data)
    assert world.mail_of("invite") == [] and world.mail_of("cancelled") == []


@pytest.mark.parametrize(
    "held_steps",
    [
        (Activity.UPDATE_CALENDAR_ENTRY,),
        (Activity.UPDATE_SCC_EVENT, Activity.PUBLISH_GUEST_PAGE),
    ],
    ids=["calendar", "scc-and-page"],
)
async def test_cancel_while_a_reschedule_is_in_flight(
    wf: Harness, held_steps: tuple[Activity, ...]
) -> None:
    world = wf.world
    data = await wf.charter(days_ahead=6)
    async with wf.worker():
        handle = await wf.book(data, local_activities=False)
        await awaiting_crew(handle)
        await until(lambda: len(world.mail_of("invite")) == 3, "three invitations")
        gates = [world.hold(step) for step in held_steps]
        moved = datetime.fromisoformat(data["starts_at"]) + timedelta(days=1)
        await handle.execute_update(
            contract.UPDATE_RESCHEDULE, Reschedule(starts_at=moved), result_type=Verdict
        )
        for gate in gates:
            await gate.started()
        await cancel(handle, "native")
        await until(
            lambda: at_least(cancel_requests(handle), len(gates)), "the reschedule cancelled"
        )
        for gate in gates:
            gate.release()
        await closes_as_asked(handle, "native")
    assert_nothing_live(world, data)
    assert len(world.mail_of("cancelled")) == 3


async def at_least(count: Any, wanted: int) -> bool:
    return bool(await count >= wanted)


async def test_cancel_while_blocked_on_the_scc_key(wf: Harness) -> None:
    """The key is broken: the calendar entry is undone, SCC is never called for an event that
    was never made, and the booking closes."""
    world = wf.world
    world.scc_key = "missing"
    data = await wf.charter()
    async with wf.worker():
        handle = await wf.book(data)
        await until(lambda: world.alerts(), "the key's block alerted")
        await cancel(handle, "update")
        await closes_as_asked(handle, "update")
        final = await status(handle)
    assert_nothing_live(world, data)
    assert world.calls[Activity.CREATE_SCC_EVENT] == 0
    assert world.calls[Activity.CANCEL_SCC_EVENT] == 0
    assert final.blocks == []
