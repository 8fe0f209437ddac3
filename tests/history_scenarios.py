"""Booking scenarios recorded as histories for the replay gate (tests/test_replay.py): every
path the workflow has, each file named after the path it records, so a change that would break
bookings already running fails there first.

Recorded on the real dev server (`live_harness`: the time-skipping server drops the SDK metadata
a replay needs) with the outside world in memory (tests/workflow_world.py), in real time: a
booking that must reach its end starts a minute ahead and lasts 36 seconds; the others stop at
the point their path is about (confirmed, cancelled, continued as new), which a replay checks as
well as a closed run."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from temporalio.exceptions import ApplicationError

from charters import contract
from charters.contract import Activity
from charters.models import (
    ApproveSccKeyRepair,
    AssignCrew,
    CancelBooking,
    CrewMember,
    EmailBounced,
    Reschedule,
    ResolveBlock,
)
from tests.support import booking_data, new_ref
from tests.workflow_harness import (
    EMAIL_OF,
    MEMBERS,
    REPLACEMENT,
    Handle,
    Harness,
    awaiting_crew,
    confirm,
    until,
    wait_status,
)

Scenario = Callable[[Harness], Awaitable[Handle]]


async def _confirm_all(handle: Handle, members: tuple[str, ...] = MEMBERS) -> None:
    for member in members:
        await confirm(handle, member)
    await wait_status(handle, lambda s: s.stage == "confirmed", "confirmed")


async def _to_the_end(handle: Handle) -> Handle:
    await asyncio.wait_for(handle.result(), timeout=240)
    return handle


async def soon(h: Harness, seconds: float = 60, **overrides: Any) -> dict[str, Any]:
    """Booking data for a charter `seconds` from now, 36 seconds long."""
    now = await h.env.get_current_time()
    starts = (now + timedelta(seconds=seconds)).astimezone(ZoneInfo("America/Los_Angeles"))
    return booking_data(
        new_ref("HS"),
        starts_at=starts.replace(microsecond=0, tzinfo=None).isoformat(),
        duration_hours="0.01",
        **overrides,
    )


# A short life: no reminder or deadline falls due before the charter, the thank-you at its end.
SHORT = {"thank_you_hours_after_end": 0.0, "confirm_deadline_hours_before": 0.001}


async def happy_path(h: Harness) -> Handle:
    """Booked 10 days ahead, all accept, reminders, the trip, the thank-you."""
    data = await soon(h)
    async with h.worker():
        handle = await h.book(data, **SHORT)
        await awaiting_crew(handle)
        await _confirm_all(handle)
        return await _to_the_end(handle)


async def regular_activities(h: Harness) -> Handle:
    """The happy path with every step a regular activity (`CHARTERS_LOCAL_ACTIVITIES=false`)."""
    data = await soon(h)
    async with h.worker():
        handle = await h.book(data, local_activities=False, **SHORT)
        await awaiting_crew(handle)
        await _confirm_all(handle)
        return await _to_the_end(handle)


async def local_fallback(h: Harness) -> Handle:
    """The calendar's quick local attempts fail (a throttle); the step goes on as a regular
    activity and succeeds."""
    h.world.fail(
        Activity.CREATE_CALENDAR_ENTRY,
        lambda: ApplicationError("calendar answered 503", type="UpstreamUnavailable"),
        times=2,
    )
    data = await soon(h)
    async with h.worker():
        handle = await h.book(data, **SHORT)
        await awaiting_crew(handle)
        await _confirm_all(handle)
        return await _to_the_end(handle)


async def scc_block_repair(h: Harness) -> Handle:
    """SERVICE_KEY_HASH missing; an operator approves the repair; the booking goes on."""
    h.world.scc_key = "missing"
    data = await h.charter(days_ahead=5)
    async with h.worker():
        handle = await h.book(data)
        await wait_status(
            handle, lambda s: s.blocked_on == contract.BLOCKED_SCC_KEY_HASH, "blocked on the key"
        )
        await handle.signal(
            contract.SIGNAL_APPROVE_SCC_KEY_REPAIR, ApproveSccKeyRepair(approved_by="dana")
        )
        await awaiting_crew(handle)
        await _confirm_all(handle)
        return handle


async def block_retry(h: Harness) -> Handle:
    """SES refuses one member's address for good: their seat blocks, the others go on; the
    address is fixed and the operator retries the step."""
    refused = EMAIL_OF["crew-2"]
    h.world.refuse_address(refused)
    data = await h.charter(days_ahead=6)
    async with h.worker():
        handle = await h.book(data)
        await wait_status(handle, lambda s: s.blocked_on == "crew-email", "blocked on a seat")
        h.world.accept_address(refused)
        await handle.execute_update(
            contract.UPDATE_RESOLVE_BLOCK, ResolveBlock(step="crew-email:crew-2", by="dana")
        )
        await awaiting_crew(handle)
        await _confirm_all(handle)
        return handle


async def bounce(h: Harness) -> Handle:
    """A member's invitation bounces; the operator assigns the same member with a working
    address, who is invited again and accepts."""
    data = await h.charter(days_ahead=6)
    async with h.worker():
        handle = await h.book(data)
        await awaiting_crew(handle)
        await handle.signal(
            contract.SIGNAL_EMAIL_BOUNCED,
            EmailBounced(crew_id="crew-1", kind="bounce", reason="mailbox does not exist"),
        )
        await wait_status(handle, lambda s: s.blocked_on == "crew-email", "the seat blocked")
        fixed = CrewMember(
            id="crew-1",
            name="Alex Rivera",
            email="alex.rivera@sailjada.com",
            hourly_rate=Decimal("25.00"),
        )
        await handle.signal(
            contract.SIGNAL_ASSIGN_CREW, AssignCrew(replaces="crew-1", member=fixed)
        )
        await _confirm_all(handle)
        return handle


async def bounce_kinds(h: Harness) -> Handle:
    """A member's mailbox is full: the invitation goes again a few seconds later; the guest's
    address and an operations alert bounce (notes; the guest's a `guest-email` block and an
    alert); everyone accepts."""
    data = await h.charter(days_ahead=6)
    jordan = EMAIL_OF["crew-2"]
    async with h.worker():
        handle = await h.book(data, transient_bounce_retry_hours=3 / 3600)
        await awaiting_crew(handle)
        first = (await until(lambda: h.world.mail_to(jordan, "invite"), "invited"))[0]
        await handle.signal(
            contract.SIGNAL_EMAIL_BOUNCED,
            EmailBounced(
                crew_id="crew-2",
                kind="bounce",
                reason="Transient/MailboxFull: mailbox full",
                transient=True,
                message_id=first.message_id,
            ),
        )
        await until(lambda: len(h.world.mail_to(jordan, "invite")) == 2, "sent again")
        for recipient in ("guest", "operations"):
            await handle.signal(
                contract.SIGNAL_EMAIL_BOUNCED,
                EmailBounced(kind="bounce", reason="mailbox does not exist", recipient=recipient),
            )
        await wait_status(handle, lambda s: s.blocked_on == "guest-email", "the guest's block")
        await _confirm_all(handle)
        return handle


async def decline_replacement(h: Harness) -> Handle:
    """A member declines; operations assign a replacement, who accepts with the others."""
    data = await h.charter(days_ahead=6)
    async with h.worker():
        handle = await h.book(data)
        await awaiting_crew(handle)
        await confirm(handle, "crew-1", "decline")
        await wait_status(handle, lambda s: s.blocked_on == "crew-declined", "declined")
        await handle.signal(
            contract.SIGNAL_ASSIGN_CREW, AssignCrew(replaces="crew-1", member=REPLACEMENT)
        )
        await _confirm_all(handle, ("captain-1", REPLACEMENT.id, "crew-2"))
        return handle


async def reschedule_after_confirmation(h: Harness) -> Handle:
    """Confirmed, then moved a day later: asked again, confirmed again, the trip."""
    data = await h.charter(days_ahead=8)
    async with h.worker():
        handle = await h.book(data)
        await awaiting_crew(handle)
        await _confirm_all(handle)
        moved = datetime.fromisoformat(data["starts_at"]) + timedelta(days=1)
        await handle.signal(contract.SIGNAL_RESCHEDULE, Reschedule(starts_at=moved))
        await wait_status(handle, lambda s: s.round == 2 and s.stage == "awaiting-crew", "moved")
        await _confirm_all(handle)
        return handle


async def cancel_awaiting_crew(h: Harness) -> Handle:
    """Cancelled by the operator (`charters cancel`'s signal twin) while the crew answer."""
    data = await h.charter(days_ahead=6)
    async with h.worker():
        handle = await h.book(data)
        await awaiting_crew(handle)
        await confirm(handle, "captain-1")
        await handle.signal(contract.SIGNAL_CANCEL_BOOKING, CancelBooking(reason="guest"))
        return await _to_the_end(handle)


async def cancel_after_confirmed(h: Harness) -> Handle:
    """Confirmed, then the guest cancels five days later."""
    data = await h.charter(days_ahead=12)
    async with h.worker():
        handle = await h.book(data)
        await awaiting_crew(handle)
        await _confirm_all(handle)
        await handle.signal(contract.SIGNAL_CANCEL_BOOKING, CancelBooking(reason="guest"))
        return await _to_the_end(handle)


async def native_cancel(h: Harness) -> Handle:
    """Cancelled from the Web UI (a native cancel) while awaiting the crew: the same
    compensation, and the run ends CANCELED."""
    data = await h.charter(days_ahead=6)
    async with h.worker():
        handle = await h.book(data)
        await awaiting_crew(handle)
        await handle.cancel()
        await wait_status(handle, lambda s: s.stage == "cancelled", "cancelled")
        await _closed(handle)
        return handle


async def continue_as_new(h: Harness) -> Handle:
    """A booking whose history passes the limit continues as new at a quiet point, among its
    crew's answers and a reschedule; this records the first run, up to the continue-as-new."""
    data = await h.charter(days_ahead=9)
    async with h.worker():
        handle = await h.book(data, history_event_limit=40)
        first_run = (await handle.describe()).run_id
        await awaiting_crew(handle)
        await confirm(handle, "captain-1")
        moved = datetime.fromisoformat(data["starts_at"]) + timedelta(days=1)
        await handle.signal(contract.SIGNAL_RESCHEDULE, Reschedule(starts_at=moved))
        await wait_status(handle, lambda s: s.round == 2 and s.stage == "awaiting-crew", "moved")
        latest = h.client.get_workflow_handle(handle.id)

        async def continued() -> bool:
            return (await latest.describe()).run_id != first_run

        # The limit is checked when the booking wakes, against its history as that workflow
        # task began: answers keep waking it until it has continued.
        for member in ("crew-1", "crew-2", "captain-1"):
            await confirm(latest, member)
            for _ in range(100):
                if await continued():
                    break
                await asyncio.sleep(0.05)
            if await continued():
                break
        assert await continued(), "the booking never continued as new"
        return h.client.get_workflow_handle(handle.id, run_id=first_run)


async def _closed(handle: Handle) -> None:
    for _ in range(600):
        if (await handle.describe()).close_time is not None:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{handle.id} never closed")


# name → (scenario, the event that closes the recorded run or None for one that is still
# running, the result's outcome if it has one)
SCENARIOS: dict[str, tuple[Scenario, str | None, str | None]] = {
    "happy-path-completed": (happy_path, "COMPLETED", "completed"),
    "happy-path-regular-activities": (regular_activities, "COMPLETED", "completed"),
    "local-fallback": (local_fallback, "COMPLETED", "completed"),
    "scc-block-repair": (scc_block_repair, None, None),
    "block-retry": (block_retry, None, None),
    "bounce": (bounce, None, None),
    "bounce-kinds": (bounce_kinds, None, None),
    "decline-replacement": (decline_replacement, None, None),
    "reschedule-after-confirmation": (reschedule_after_confirmation, None, None),
    "cancel-awaiting-crew": (cancel_awaiting_crew, "COMPLETED", "cancelled"),
    "cancel-after-confirmed": (cancel_after_confirmed, "COMPLETED", "cancelled"),
    "native-cancel": (native_cancel, "CANCELED", None),
    "continue-as-new": (continue_as_new, "CONTINUED_AS_NEW", None),
}


def closing_event(name: str) -> str | None:
    closing = SCENARIOS[name][1]
    return f"EVENT_TYPE_WORKFLOW_EXECUTION_{closing}" if closing else None


def expected_outcome(name: str) -> str | None:
    return SCENARIOS[name][2]
