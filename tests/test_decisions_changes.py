"""People's changes that can become wrong between asking and applying: a reschedule whose date
passes while the booking is busy, a member seated twice, an approval nobody needs, an answer held
until the booking is validated, and updates in flight when the run continues as new. None of them
may fail the booking: each is refused (with a verdict, a note, an alert) or applied once."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from charters import contract, errors
from charters.contract import Activity
from charters.models import (
    ApproveSccKeyRepair,
    AssignCrew,
    BookingResult,
    CrewConfirmation,
    CrewMember,
    EmailBounced,
    Reschedule,
    ResolveBlock,
    Verdict,
)
from tests.workflow_harness import (
    MEMBERS,
    REPLACEMENT,
    Harness,
    answers,
    awaiting_crew,
    confirm,
    events,
    needs_test_server,
    result_of,
    status,
    until,
    wait_status,
)

pytestmark = needs_test_server


async def update(handle: WorkflowHandle[Any, Any], name: str, arg: Any) -> Verdict:
    return await handle.execute_update(name, arg, result_type=Verdict)


async def handled_since(handle: WorkflowHandle[Any, Any], kind: EventType.ValueType) -> bool:
    """A workflow task completed after the last event of `kind`: the workflow has seen it."""
    found = [e.event_type for e in await events(handle)]
    if kind not in found:
        return False
    last = len(found) - 1 - found[::-1].index(kind)
    return EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED in found[last:]


async def test_a_reschedule_whose_date_passed_before_it_applied_is_refused_not_failed(
    wf: Harness,
) -> None:
    """Asked for in 2 hours while the booking waits on the SCC key; applied 3 hours later, when
    that time has passed: refused with a note, an error line and an alert; the booking keeps its
    date and goes on."""
    world = wf.world
    world.scc_key = "missing"
    data = await wf.charter(days_ahead=5)
    async with wf.worker():
        handle = await wf.book(data, scc_retry_max_interval_seconds=600)
        await wait_status(
            handle, lambda s: s.blocked_on == contract.BLOCKED_SCC_KEY_HASH, "blocked on the key"
        )
        now = await wf.env.get_current_time()
        soon = (now + timedelta(hours=2)).astimezone(ZoneInfo("America/Los_Angeles"))
        soon = soon.replace(tzinfo=None, second=0, microsecond=0)
        verdict = await update(handle, contract.UPDATE_RESCHEDULE, Reschedule(starts_at=soon))
        assert verdict.recorded, verdict
        await wf.sleep(hours=3)
        world.scc_key = "ok"
        await wf.sleep(minutes=15)
        current = await wait_status(
            handle, lambda s: bool(s.notes), "the reschedule refused", timeout=30
        )
        await awaiting_crew(handle)
        await until(
            lambda: any("reschedule refused" in a.subject for a in world.alerts()), "alerted"
        )
        after = await status(handle)
        await handle.terminate("test over")
    assert "reschedule to" in current.notes[-1] and "the booking keeps" in current.notes[-1]
    assert after.round == 1 and after.outcome is None
    assert after.charter is not None and after.charter.starts_at.isoformat() == data["starts_at"]
    assert all(e.status == "tentative" for e in world.calendar_for(data["booking_ref"]))


async def test_a_date_moved_before_the_crew_were_asked_invites_them_plainly(
    wf: Harness,
) -> None:
    """The date moves while the booking waits on the SCC key, before anyone was asked: each
    member gets one plain invitation for the new date, no "rescheduled" notice for a charter they
    never heard of; a member asked for the old date would be told it moved (the interleaving
    test's reschedule cells)."""
    world = wf.world
    world.scc_key = "missing"
    data = await wf.charter(days_ahead=5)
    moved = datetime.fromisoformat(data["starts_at"]) + timedelta(days=2)
    async with wf.worker():
        handle = await wf.book(data, scc_retry_max_interval_seconds=60)
        await wait_status(
            handle, lambda s: s.blocked_on == contract.BLOCKED_SCC_KEY_HASH, "blocked on the key"
        )
        verdict = await update(handle, contract.UPDATE_RESCHEDULE, Reschedule(starts_at=moved))
        assert verdict.recorded, verdict
        world.scc_key = "ok"
        await wf.sleep(minutes=2)
        current = await awaiting_crew(handle)
        await until(lambda: len(world.mail_of("invite")) == len(MEMBERS), "everyone invited")
        await handle.terminate("test over")
    assert current.round == 2
    assert world.mail_of("rescheduled") == []
    assert len({m.to for m in world.mail_of("invite")}) == len(MEMBERS)


async def test_a_reschedule_is_applied_when_a_step_it_stops_fails_instead(wf: Harness) -> None:
    """Everyone accepted and the calendar's confirmation is in flight when the date moves: the
    reschedule stops the confirmation, whose attempt then fails (a sync activity cannot hear the
    cancel; its call ends in an error) rather than acknowledging the cancel. That failure is the
    cancel taking effect, not a step to block on: the reschedule goes on to round 2 and nothing
    waits for an operator. (The summary beside it is held too: the time-skipping server rejects a
    cancel of an activity that completes in the same workflow task, sdk-java#2391, which the
    real server accepts.)"""
    world = wf.world
    data = await wf.charter(days_ahead=6)
    async with wf.worker():
        # an attempt long enough that only the cancel ends it, however slow the machine
        handle = await wf.book(data, activity_timeout_seconds=900)
        await awaiting_crew(handle)
        confirmation = world.hold(Activity.UPDATE_CALENDAR_ENTRY)
        summary = world.hold(Activity.SEND_CAPTAIN_SUMMARY)
        world.fail(
            Activity.UPDATE_CALENDAR_ENTRY,
            lambda: errors.needs_operator("calendar answered HTTP 409", "look at the entry"),
        )
        for member in MEMBERS:
            await confirm(handle, member)
        await confirmation.started()
        await summary.started()
        moved = datetime.fromisoformat(data["starts_at"]) + timedelta(days=1)
        verdict = await update(handle, contract.UPDATE_RESCHEDULE, Reschedule(starts_at=moved))
        assert verdict.recorded, verdict
        await until(lambda: cancels_asked(handle, 2), "both held calls asked to cancel")
        confirmation.release()
        summary.release()
        moved_on = await wait_status(handle, lambda s: s.round == 2, "round 2", timeout=30)
        await handle.terminate("test over")
    assert moved_on.blocked_on != "calendar" and not world.alerts()
    assert moved_on.steps["calendar_confirmed"] == "pending"


async def cancels_asked(handle: WorkflowHandle[Any, Any], count: int) -> bool:
    found = [e.event_type for e in await events(handle)]
    return found.count(EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED) >= count


async def test_the_same_member_cannot_take_two_seats(wf: Harness) -> None:
    data = await wf.charter()
    async with wf.worker():
        handle = await wf.book(data)
        await awaiting_crew(handle)
        first = await update(
            handle, contract.UPDATE_ASSIGN_CREW, AssignCrew(replaces="crew-2", member=REPLACEMENT)
        )
        assert first.recorded, first
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await update(
                handle,
                contract.UPDATE_ASSIGN_CREW,
                AssignCrew(replaces="crew-1", member=REPLACEMENT),
            )
        cause = refused.value.cause
        assert isinstance(cause, ApplicationError) and cause.type == contract.REFUSED_INVALID
        current = await status(handle)
        await handle.terminate("test over")
    assert answers(current) == {
        "captain-1": "pending",
        "crew-1": "pending",
        "crew-2": "replaced",
        REPLACEMENT.id: "pending",
    }


async def test_two_signals_seating_one_member_twice_seat_them_once(wf: Harness) -> None:
    """Both signals land in one workflow task (no worker polls meanwhile): the second is
    refused like its update, and the run still continues as new (its state deserializes) and
    completes. (No status query here: the test server can drop one that meets a
    continue-as-new; the world and the result say what happened.)"""
    world = wf.world
    data = await wf.charter()
    handle = await wf.book(data, history_event_limit=40, local_activities=False)
    first_run = handle.first_execution_run_id
    async with wf.worker(cached=False):
        await until(lambda: len(world.mail_of("invite")) == 3, "the crew asked")
    for seat in ("crew-2", "crew-1"):
        await handle.signal(
            contract.SIGNAL_ASSIGN_CREW, AssignCrew(replaces=seat, member=REPLACEMENT)
        )
    async with wf.worker(cached=False):
        await until(lambda: world.mail_to(REPLACEMENT.email, "invite"), "the newcomer asked")
        for member in ("captain-1", "crew-1", REPLACEMENT.id):
            await confirm(handle, member)
        await until(lambda: world.mail_of("captain-summary"), "the captain's summary")
        latest = wf.client.get_workflow_handle(handle.id)
        await until(lambda: _run_changed(latest, first_run), "continued as new")
        result = await result_of(handle)
    assert result.outcome == "completed"
    assert [(a.crew_id, a.answer) for a in result.confirmations] == [
        ("captain-1", "accepted"),
        ("crew-1", "accepted"),
        (REPLACEMENT.id, "accepted"),
    ]
    assert len(world.mail_to(REPLACEMENT.email, "invite")) == 1


async def test_an_approval_nobody_needs_is_ignored(wf: Harness) -> None:
    """An `approve_scc_key_repair` signal before the booking is blocked on the key changes
    nothing (no repair later behind the operator's back); one sent while blocked repairs."""
    world = wf.world
    world.scc_key = "mismatch"
    check = world.hold(Activity.CHECK_SCC_SERVICE_KEY)
    data = await wf.charter()
    async with wf.worker():
        handle = await wf.book(data, local_activities=False)
        await check.started()
        await handle.signal(contract.SIGNAL_APPROVE_SCC_KEY_REPAIR, ApproveSccKeyRepair())
        await until(
            lambda: handled_since(handle, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED),
            "the signal handled",
        )
        check.release()
        await wait_status(
            handle, lambda s: s.blocked_on == contract.BLOCKED_SCC_KEY_HASH, "blocked on the key"
        )
        await until(lambda: world.alerts(), "the block alerted")
        assert world.calls[Activity.REPAIR_SCC_SERVICE_KEY_HASH] == 0
        verdict = await update(
            handle, contract.UPDATE_APPROVE_SCC_KEY_REPAIR, ApproveSccKeyRepair(approved_by="dana")
        )
        assert verdict.recorded, verdict
        await awaiting_crew(handle)
        await handle.terminate("test over")
    assert world.calls[Activity.REPAIR_SCC_SERVICE_KEY_HASH] == 1
    assert world.effects["scc.create"] == 1


async def test_a_held_answer_that_became_invalid_gets_a_verdict_not_a_failure(
    wf: Harness,
) -> None:
    """Answers sent before the booking is validated are held; by the time they are looked at one
    is a repeat (the same member's signal came first) and one names nobody on the crew: each
    update returns a verdict saying so, and nothing fails."""
    data = await wf.charter()
    handle = await wf.book(data)
    await confirm(handle, "crew-1")
    repeat = asyncio.ensure_future(
        update(
            handle,
            contract.UPDATE_CREW_CONFIRMATION,
            CrewConfirmation(crew_id="crew-1", decision="accept"),
        )
    )
    stranger = asyncio.ensure_future(
        update(
            handle,
            contract.UPDATE_CREW_CONFIRMATION,
            CrewConfirmation(crew_id="nobody", decision="accept"),
        )
    )
    await asyncio.sleep(0.5)  # both updates reach the server before any worker polls
    async with wf.worker():
        verdicts = await asyncio.wait_for(asyncio.gather(repeat, stranger), timeout=60)
        current = await awaiting_crew(handle)
        await handle.terminate("test over")
    assert [(v.recorded, v.code) for v in verdicts] == [
        (False, contract.REFUSED_ALREADY_ANSWERED),
        (False, contract.REFUSED_UNKNOWN_MEMBER),
    ]
    assert answers(current) == {"captain-1": "pending", "crew-1": "accepted", "crew-2": "pending"}
    kinds = [e.event_type for e in await events(handle)]
    assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED not in kinds


async def test_continue_as_new_with_updates_in_flight_keeps_every_answer(wf: Harness) -> None:
    """A low history limit: the run continues as new at quiet points again and again while
    answers arrive as updates side by side (around the drain). Every update returns, every
    answer is kept in the new runs, and the booking completes: no deadlock.

    Regular activities: the Java test server refuses a workflow task that completes updates,
    local activities' markers and continue-as-new together in some orders ("invalid history
    builder state for action"), which the real server accepts."""
    data = await wf.charter()
    handle = await wf.book(data, history_event_limit=15, local_activities=False)
    first_run = handle.first_execution_run_id
    async with wf.worker():
        # Read the world, not the status query: the test server can drop a query that meets a
        # continue-as-new.
        await until(lambda: len(wf.world.mail_of("invite")) == 3, "the crew asked")
        verdicts = await asyncio.wait_for(
            asyncio.gather(
                *(
                    update(
                        handle,
                        contract.UPDATE_CREW_CONFIRMATION,
                        CrewConfirmation(crew_id=member, decision="accept"),
                    )
                    for member in MEMBERS
                )
            ),
            timeout=60,
        )
        await until(lambda: wf.world.mail_of("captain-summary"), "the captain's summary")
        latest = wf.client.get_workflow_handle(handle.id, result_type=BookingResult)
        await until(lambda: _run_changed(latest, first_run), "continued as new")
        result = await result_of(handle)
    assert all(v.recorded for v in verdicts), verdicts
    assert result.outcome == "completed"
    assert {a.crew_id: a.answer for a in result.confirmations} == dict.fromkeys(MEMBERS, "accepted")
    assert len(wf.world.mail_of("captain-summary")) == 1


async def _run_changed(handle: WorkflowHandle[Any, Any], first_run: str | None) -> bool:
    return (await handle.describe()).run_id != first_run


async def test_a_reschedule_the_calendar_refuses_keeps_the_booking_as_it_was(
    wf: Harness,
) -> None:
    """All or nothing at the calendar: its refusal leaves date, answers and links as they were,
    with a note and an alert; the booking goes on."""
    world = wf.world
    data = await wf.charter(days_ahead=6)
    async with wf.worker():
        handle = await wf.book(data)
        await awaiting_crew(handle)
        await confirm(handle, "captain-1")
        await wait_status(handle, lambda s: answers(s)["captain-1"] == "accepted", "captain in")
        world.fail(
            Activity.UPDATE_CALENDAR_ENTRY,
            lambda: errors.needs_operator("calendar answered HTTP 409", "pick another date"),
        )
        moved = datetime.fromisoformat(data["starts_at"]) + timedelta(days=1)
        verdict = await update(handle, contract.UPDATE_RESCHEDULE, Reschedule(starts_at=moved))
        assert verdict.recorded, verdict
        current = await wait_status(handle, lambda s: bool(s.notes), "refused")
        await until(lambda: world.alerts(), "alerted")
        await handle.terminate("test over")
    assert "refused by the calendar" in current.notes[-1]
    assert current.round == 1 and answers(current)["captain-1"] == "accepted"
    assert world.mail_of("rescheduled") == []
    assert world.scc_for(data["booking_ref"])[0].status == "scheduled"


async def test_a_bounced_member_given_a_working_address_is_asked_again(wf: Harness) -> None:
    """SES reports a bounce: the seat blocks and operations are told; `charters assign` with the
    same id and a corrected address re-invites that member and clears the block."""
    world = wf.world
    data = await wf.charter()
    async with wf.worker():
        handle = await wf.book(data)
        await awaiting_crew(handle)
        await until(lambda: len(world.mail_of("invite")) == 3, "three invitations")
        await handle.signal(
            contract.SIGNAL_EMAIL_BOUNCED,
            EmailBounced(crew_id="crew-2", kind="bounce", reason="mailbox does not exist"),
        )
        bounced = await wait_status(
            handle, lambda s: any(b.on == "crew-email:crew-2" for b in s.blocks), "blocked"
        )
        await until(lambda: world.alerts(), "operations told")
        fixed = CrewMember(
            id="crew-2", name="Jordan Lee", email="jordan.lee@sailjada.com", hourly_rate="25.00"
        )
        verdict = await update(
            handle, contract.UPDATE_ASSIGN_CREW, AssignCrew(replaces="crew-2", member=fixed)
        )
        assert verdict.recorded, verdict
        await until(lambda: world.mail_to(fixed.email, "invite"), "asked at the new address")
        after = await wait_status(
            handle, lambda s: not any(b.on == "crew-email:crew-2" for b in s.blocks), "cleared"
        )
        await handle.terminate("test over")
    assert bounced.blocked_on == "crew-email"
    assert answers(after)["crew-2"] == "pending"
    assert len(world.alerts()) == 1


async def test_a_compensation_that_fails_for_good_blocks_and_resumes(wf: Harness) -> None:
    """The calendar refuses the cancel (a permanent error): compensation blocks on
    `calendar-cancel`, says so and alerts; a retry after the fix finishes it."""
    world = wf.world
    world.fail(
        Activity.CANCEL_CALENDAR_ENTRY,
        lambda: errors.needs_operator("calendar answered HTTP 403", "rotate the dashboard token"),
    )
    data = await wf.charter()
    async with wf.worker():
        handle = await wf.book(data)
        await awaiting_crew(handle)
        await handle.cancel()
        stuck = await wait_status(
            handle, lambda s: any(b.on == "calendar-cancel" for b in s.blocks), "blocked"
        )
        assert stuck.stage == "cancelling"
        verdict = await update(
            handle, contract.UPDATE_RESOLVE_BLOCK, ResolveBlock(step="calendar-cancel")
        )
        assert verdict.recorded, verdict
        with pytest.raises(WorkflowFailureError):
            await result_of(handle)
        final = await status(handle)
    assert final.stage == "cancelled" and final.blocks == []
    assert all(e.status == "cancelled" for e in world.calendar_for(data["booking_ref"]))
    assert len(world.alerts()) == 1
