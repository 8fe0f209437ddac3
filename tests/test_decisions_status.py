"""`charters status`, the Web UI and the search attributes tell the truth at every stage: what an
operator reads is what the booking is doing."""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType

from charters import contract
from charters.contract import Activity
from charters.models import CancelBooking, Verdict
from tests.workflow_harness import (
    EMAIL_OF,
    GUEST,
    MEMBERS,
    Harness,
    awaiting_crew,
    closed_as,
    confirm,
    needs_test_server,
    result_of,
    status,
    until,
    wait_status,
)

pytestmark = needs_test_server


async def test_the_stage_leaves_notifying_while_one_email_is_blocked(wf: Harness) -> None:
    """Every invitation is sent or waits for a person: the booking is awaiting the crew, with the
    blocked seat shown, whether or not the alert about it has gone out yet (held here, so that
    only the block itself can move the stage)."""
    world = wf.world
    world.refuse_address(EMAIL_OF["captain-1"])
    alert = world.hold(Activity.ALERT_OPERATIONS)
    data = await wf.charter(crew=[])  # one seat: nothing else wakes the booking meanwhile
    async with wf.worker():
        handle = await wf.book(data, local_activities=False)
        await alert.started()
        current = await wait_status(
            handle, lambda s: s.stage == "awaiting-crew", "awaiting crew with a seat blocked"
        )
        assert any(b.on == "crew-email:captain-1" for b in current.blocks)
        assert current.steps["confirmations"] == "running"
        described = await handle.describe()
        assert described.typed_search_attributes.get(contract.SA_BOOKING_STAGE) == "awaiting-crew"
        assert described.typed_search_attributes.get(contract.SA_BLOCKED_ON) == "crew-email"
        alert.release()
        await until(lambda: world.alerts(), "the alert sent")


async def test_crew_pending_is_zero_once_cancelled(wf: Harness) -> None:
    data = await wf.charter()
    async with wf.worker():
        handle = await wf.book(data)
        await awaiting_crew(handle)
        described = await handle.describe()
        assert described.typed_search_attributes.get(contract.SA_CREW_PENDING) == 3
        await handle.execute_update(
            contract.UPDATE_CANCEL_BOOKING, CancelBooking(), result_type=Verdict
        )
        await result_of(handle)
        described = await handle.describe()
    attributes = described.typed_search_attributes
    assert attributes.get(contract.SA_CREW_PENDING) == 0
    assert attributes.get(contract.SA_BOOKING_STAGE) == "cancelled"
    assert attributes.get(contract.SA_BLOCKED_ON) is None


async def test_guest_reminders_are_done_only_after_both(wf: Harness) -> None:
    world = wf.world
    data = await wf.charter(days_ahead=4)  # 72 h before: day 1; 24 h before: day 3
    async with wf.worker():
        handle = await wf.book(data)
        await awaiting_crew(handle)
        await wf.sleep(hours=25)
        await until(lambda: len(world.mail_to(GUEST, "guest-reminder")) == 1, "the 72 h one")
        one = await wait_status(
            handle, lambda s: s.steps["guest_reminders"] != "pending", "guest reminders shown"
        )
        assert one.steps["guest_reminders"] == "running", "one of two sent: not done"
        await wf.sleep(hours=48)
        await until(lambda: len(world.mail_to(GUEST, "guest-reminder")) == 2, "the 24 h one")
        two = await wait_status(
            handle, lambda s: s.steps["guest_reminders"] == "done", "guest reminders done"
        )
        assert two.stage == "awaiting-crew"
        await handle.terminate("test over")
    assert await closed_as(handle) == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED


async def test_status_names_who_is_still_awaited(wf: Harness) -> None:
    data = await wf.charter()
    async with wf.worker():
        handle = await wf.book(data)
        current = await awaiting_crew(handle)
        await handle.terminate("test over")
    assert current.blocked_on == contract.BLOCKED_CREW_CONFIRMATIONS
    assert current.blocked_reason == "waiting for Sam Harbor, Alex Rivera, Jordan Lee"


async def test_a_native_cancel_after_departure_leaves_a_truthful_status(wf: Harness) -> None:
    data = await wf.charter(days_ahead=2)
    async with wf.worker():
        handle = await wf.book(data)
        await awaiting_crew(handle)
        for member in MEMBERS:
            await confirm(handle, member)
        await wait_status(handle, lambda s: s.stage == "confirmed", "confirmed")
        await wf.sleep(days=2, hours=1)
        await wait_status(handle, lambda s: s.stage == "under-way", "under way")
        await handle.cancel()
        closed = await closed_as(handle)
        final = await status(handle)
    assert closed == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED
    assert final.stage == "cancelled" and final.outcome == "cancelled"
    assert (final.steps["album"], final.steps["thank_you"]) == ("cancelled", "cancelled")
    assert wf.world.calendar_for(data["booking_ref"])[0].status == "confirmed", "nothing undone"
