"""Steps that fail for good block for a person: the block holds only what depends on it, is never
silent (one alert per block) and always resumes (`charters retry` is `resolve_block`).

A crew address SES refuses is the everyday case: that seat waits for an operator while the other
members' reminders, the guest's reminders, the deadline and departure go on at their times.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio.client import WorkflowHandle

from charters import contract, errors
from charters.contract import Activity
from charters.models import CancelBooking, Reschedule, ResolveBlock, Verdict
from tests.workflow_harness import (
    EMAIL_OF,
    GUEST,
    Harness,
    awaiting_crew,
    confirm,
    needs_test_server,
    reminders_sent,
    result_of,
    status,
    until,
    wait_status,
)
from tests.workflow_world import World

pytestmark = needs_test_server

JORDAN = EMAIL_OF["crew-2"]


async def resolve(
    handle: WorkflowHandle[Any, Any], step: str | None, action: str = "retry"
) -> Verdict:
    return await handle.execute_update(
        contract.UPDATE_RESOLVE_BLOCK,
        ResolveBlock(step=step, action=action),  # type: ignore[arg-type]
        result_type=Verdict,
    )


def blocked(on: str) -> Any:
    return lambda s: any(b.on == on for b in s.blocks)


async def test_a_refused_address_blocks_only_that_seat_and_every_clock_keeps_time(
    wf: Harness,
) -> None:
    world = wf.world
    world.refuse_address(JORDAN)
    data = await wf.charter(days_ahead=6)  # reminders at 24 h and 48 h, deadline at 96 h
    async with wf.worker():
        handle = await wf.book(data)
        # Once the other two are invited the others can answer: notifying is over, although
        # one seat waits for a person.
        seat = await wait_status(
            handle,
            lambda s: blocked("crew-email:crew-2")(s) and s.stage == "awaiting-crew",
            "crew-2's seat blocked, the others asked",
        )
        assert seat.blocked_on == "crew-email"
        assert "Jordan Lee" in (seat.blocked_reason or "")
        await until(lambda: len(world.mail_of("invite")) == 2, "the other two invited")
        await until(lambda: len(world.alerts()) == 1, "operations told")
        await confirm(handle, "captain-1")
        await wait_status(handle, lambda s: s.crew[0].answer == "accepted", "captain in")

        await wf.sleep(hours=25)
        await wait_status(handle, lambda s: reminders_sent(s)["crew-1"] == 1, "crew-1 reminded")
        await wf.sleep(hours=24)  # 49 h
        await wait_status(handle, lambda s: reminders_sent(s)["crew-1"] == 2, "again")
        await wf.sleep(hours=24)  # 73 h: the guest's 72 h reminder
        await until(lambda: len(world.mail_to(GUEST, "guest-reminder")) == 1, "guest, 72 h")
        await wf.sleep(hours=24)  # 97 h: the deadline
        late = await wait_status(handle, blocked(contract.BLOCKED_CREW_DEADLINE), "deadline")
        assert blocked("crew-email:crew-2")(late), "the seat's own block stays"
        await until(
            lambda: any("deadline" in a.subject for a in world.alerts()), "deadline alerted"
        )
        await wf.sleep(hours=24)  # 121 h: the guest's 24 h reminder
        await until(lambda: len(world.mail_to(GUEST, "guest-reminder")) == 2, "guest, 24 h")
        await wf.sleep(hours=20)  # 141 h: day-of for who accepted
        await until(lambda: world.mail_to(EMAIL_OF["captain-1"], "day-of"), "day-of")
        await wf.sleep(hours=4)  # 145 h: departed
        sailed = await wait_status(handle, lambda s: s.stage == "under-way", "departed")
        assert sailed.blocked_on == contract.BLOCKED_CREW_UNFILLED
        result = await result_of(handle)
    assert result.outcome == "completed"
    assert len(world.mail_to(EMAIL_OF["crew-1"], "reminder")) == 2
    assert world.mail_to(JORDAN) == []
    assert len(world.mail_to(GUEST, "guest-thank-you")) == 1


async def test_retry_sends_the_blocked_invitation_once_the_address_is_fixed(wf: Harness) -> None:
    world = wf.world
    world.refuse_address(JORDAN)
    data = await wf.charter()
    async with wf.worker():
        handle = await wf.book(data)
        await wait_status(handle, blocked("crew-email:crew-2"), "crew-2's seat blocked")
        world.accept_address(JORDAN)
        verdict = await resolve(handle, "crew-email:crew-2")
        assert verdict.recorded, verdict
        await until(lambda: world.mail_to(JORDAN, "invite"), "crew-2 invited")
        after = await wait_status(
            handle, lambda s: not blocked("crew-email:crew-2")(s), "crew-2's seat open"
        )
        assert after.steps["notify_crew"] == "done"
        for member in ("captain-1", "crew-1", "crew-2"):
            await confirm(handle, member)
        await wait_status(handle, lambda s: s.stage == "confirmed", "confirmed")
        await handle.execute_update(
            contract.UPDATE_CANCEL_BOOKING, CancelBooking(), result_type=Verdict
        )
        await result_of(handle)
    assert len(world.mail_to(JORDAN, "invite")) == 1
    assert len(world.alerts()) == 1


async def test_retry_works_for_the_blocked_seat_after_a_reschedule(wf: Harness) -> None:
    """The old round's blocked invitation is dropped with the old date; the new round's blocks
    again, alerts again (a block of its own) and resumes by the same command."""
    world = wf.world
    world.refuse_address(JORDAN)
    data = await wf.charter(days_ahead=6)
    async with wf.worker():
        handle = await wf.book(data)
        await wait_status(handle, blocked("crew-email:crew-2"), "crew-2's seat blocked")
        moved = datetime.fromisoformat(data["starts_at"]) + timedelta(days=1)
        await handle.execute_update(
            contract.UPDATE_RESCHEDULE, Reschedule(starts_at=moved), result_type=Verdict
        )
        await wait_status(
            handle,
            lambda s: s.round == 2 and blocked("crew-email:crew-2")(s),
            "round 2, crew-2 blocked again",
        )
        await until(lambda: len(world.mail_of("rescheduled")) == 2, "the others asked again")
        await until(lambda: len(world.alerts()) == 2, "the new block alerted")
        world.accept_address(JORDAN)
        verdict = await resolve(handle, "crew-email:crew-2")
        assert verdict.recorded, verdict
        await until(lambda: world.mail_to(JORDAN, "rescheduled"), "crew-2 asked for round 2")
        for member in ("captain-1", "crew-1", "crew-2"):
            await confirm(handle, member)
        confirmed = await wait_status(handle, lambda s: s.stage == "confirmed", "confirmed")
    assert confirmed.blocks == []
    assert world.mail_to(JORDAN, "invite") == [], "round 1's blocked invite was never sent"


async def test_two_blocks_in_one_round_each_alert_once(wf: Harness) -> None:
    world = wf.world
    world.refuse_address(JORDAN)
    world.refuse_address(EMAIL_OF["crew-1"])
    data = await wf.charter()
    async with wf.worker():
        handle = await wf.book(data)
        both = await wait_status(
            handle,
            lambda s: blocked("crew-email:crew-1")(s) and blocked("crew-email:crew-2")(s),
            "both seats blocked",
        )
        assert both.blocked_on == "crew-email"
        await until(lambda: len(world.alerts()) == 2, "two alerts")
        await confirm(handle, "captain-1")  # more wake-ups: no alert repeated
        await wait_status(handle, lambda s: s.crew[0].answer == "accepted", "captain in")
        await handle.execute_update(
            contract.UPDATE_CANCEL_BOOKING, CancelBooking(), result_type=Verdict
        )
        await result_of(handle)
    subjects = sorted(a.subject.splitlines()[0] for a in world.alerts())
    assert len(subjects) == 2 and all("needs a person" in s for s in subjects), subjects
    bodies = " ".join(a.subject for a in world.alerts())
    assert "--step crew-email:crew-1" in bodies and "--step crew-email:crew-2" in bodies


async def test_a_compensation_whose_target_is_gone_counts_as_done(wf: Harness) -> None:
    """Someone deleted the calendar entry and the SCC event by hand: the cancel finds nothing
    to undo, and that is done, not a block."""
    world = wf.world
    data = await wf.charter()
    async with wf.worker():
        handle = await wf.book(data)
        await awaiting_crew(handle)
        world.calendar.clear()
        world.scc_events.clear()
        await handle.execute_update(
            contract.UPDATE_CANCEL_BOOKING, CancelBooking(), result_type=Verdict
        )
        result = await result_of(handle)
        final = await status(handle)
    assert result.outcome == "cancelled"
    assert {"calendar", "scc_event", "guest_page"} <= set(result.compensated)
    assert final.blocks == [] and world.alerts() == []


async def test_a_permanent_error_of_the_scc_key_wait_blocks_and_resumes(wf: Harness) -> None:
    world = wf.world
    world.scc_key = "missing"
    world.fail(
        Activity.AWAIT_SCC_SERVICE_KEY,
        lambda: errors.needs_operator(
            "the SCC Lambda cannot be read: AccessDenied",
            "grant the worker lambda:GetFunctionConfiguration",
        ),
    )
    data = await wf.charter()
    async with wf.worker():
        handle = await wf.book(data)
        stuck = await wait_status(handle, blocked("scc-key-wait"), "the key wait blocked")
        assert blocked(contract.BLOCKED_SCC_KEY_HASH)(stuck)
        assert "lambda:GetFunctionConfiguration" in (
            next(b.fix for b in stuck.blocks if b.on == "scc-key-wait")
        )
        world.scc_key = "ok"
        verdict = await resolve(handle, "scc-key-wait")
        assert verdict.recorded, verdict
        current = await awaiting_crew(handle)
    assert current.blocks and all(
        b.on == contract.BLOCKED_CREW_CONFIRMATIONS for b in current.blocks
    )
    assert len(world.scc_for(data["booking_ref"])) == 1
    alerts = [a.subject.splitlines()[0] for a in world.alerts()]
    assert len(alerts) == 2, alerts  # the key's block and the wait's own, once each


async def test_a_skipped_invitation_stays_skipped(wf: Harness) -> None:
    """`charters retry --step crew-email:<member> --skip`: the member is not emailed (an
    operator confirms for them by phone). The seat's block is gone for good: the invitation
    is not sent again, blocked again and alerted again at the next wake-up."""
    world = wf.world
    world.refuse_address(JORDAN)
    data = await wf.charter()
    async with wf.worker():
        handle = await wf.book(data)
        await wait_status(handle, blocked("crew-email:crew-2"), "crew-2's seat blocked")
        await until(lambda: len(world.alerts()) == 1, "operations told")
        verdict = await resolve(handle, "crew-email:crew-2", "skip")
        assert verdict.recorded, verdict
        await confirm(handle, "captain-1")
        await wait_status(handle, lambda s: s.crew[0].answer == "accepted", "captain in")
        current = await wait_status(
            handle, lambda s: not blocked("crew-email:crew-2")(s), "crew-2's seat unblocked"
        )
        await confirm(handle, "crew-2", by="operator:dana")
        await wait_status(handle, lambda s: s.crew[2].answer == "accepted", "crew-2 by phone")
        after = await status(handle)
        await handle.terminate("test over")
    assert current.steps["email:crew-2"] == "skipped"
    assert not blocked("crew-email:crew-2")(after)
    assert len(world.alerts()) == 1
    assert world.calls[Activity.SEND_CREW_EMAIL] == 3


async def test_both_guest_reminders_blocked_resume_by_retry(wf: Harness) -> None:
    """The guest's address is refused: the 72 h reminder blocks, and so does the 24 h one
    while the first still waits. Each is a block of its own, alerted once, and a retry after
    the fix sends both."""
    world = wf.world
    world.refuse_address(GUEST)
    data = await wf.charter(days_ahead=4)  # 72 h before: day 1; 24 h before: day 3
    async with wf.worker():
        handle = await wf.book(data)
        await awaiting_crew(handle)
        await wf.sleep(hours=25)
        await until(lambda: len(guest_alerts(world)) == 1, "the 72 h reminder's block alerted")
        await wf.sleep(hours=48)
        await until(lambda: len(guest_alerts(world)) == 2, "the 24 h reminder's block alerted")
        both = await status(handle)
        world.accept_address(GUEST)
        for block in [b.on for b in both.blocks if b.on.startswith("guest-email")]:
            verdict = await resolve(handle, block)
            assert verdict.recorded, verdict
        await until(lambda: len(world.mail_to(GUEST, "guest-reminder")) == 2, "both sent")
        after = await wait_status(
            handle, lambda s: s.steps["guest_reminders"] == "done", "guest reminders done"
        )
        await handle.terminate("test over")
    assert len([b for b in both.blocks if b.on.startswith("guest-email")]) == 2, both.blocks
    assert not any(b.on.startswith("guest-email") for b in after.blocks)


def guest_alerts(world: World) -> list[str]:
    return [a.subject for a in world.alerts() if "guest_reminders needs a person" in a.subject]


async def test_an_alert_that_fails_to_send_is_sent_again_later(wf: Harness) -> None:
    """SES refuses the operations alert twice: the block stays shown, and the alert goes out on
    a later round, once."""
    world = wf.world
    world.refuse_address(JORDAN)
    world.fail(
        Activity.ALERT_OPERATIONS,
        lambda: errors.needs_operator("SES sending is paused", "resume sending"),
        times=2,
    )
    data = await wf.charter()
    async with wf.worker():
        handle = await wf.book(data)
        await wait_status(handle, blocked("crew-email:crew-2"), "crew-2's seat blocked")
        await until(lambda: world.calls[Activity.ALERT_OPERATIONS] == 1, "first try")
        await wf.sleep(minutes=6)
        await until(lambda: world.calls[Activity.ALERT_OPERATIONS] == 2, "second try")
        await wf.sleep(minutes=11)
        await until(lambda: world.alerts(), "the alert sent")
        still = await status(handle)
        await handle.terminate("test over")
    assert len(world.alerts()) == 1
    assert blocked("crew-email:crew-2")(still)


async def test_a_cancel_while_a_seat_is_blocked_tells_only_who_was_asked(wf: Harness) -> None:
    world = wf.world
    world.refuse_address(JORDAN)
    data = await wf.charter()
    async with wf.worker():
        handle = await wf.book(data)
        await wait_status(handle, blocked("crew-email:crew-2"), "crew-2's seat blocked")
        await until(lambda: len(world.mail_of("invite")) == 2, "the others asked")
        await handle.execute_update(
            contract.UPDATE_CANCEL_BOOKING, CancelBooking(), result_type=Verdict
        )
        result = await result_of(handle)
        final = await status(handle)
    assert result.outcome == "cancelled"
    assert final.blocks == []
    assert sorted(m.to for m in world.mail_of("cancelled")) == sorted(
        [EMAIL_OF["captain-1"], EMAIL_OF["crew-1"]]
    )
    assert len(world.mail_to(GUEST, "guest-cancelled")) == 1
