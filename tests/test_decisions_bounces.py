"""What the booking does with each kind of bounce the worker's listener delivers
(tests/test_ses_bounces.py reads them from SES's own events; tests/test_bounce_end_to_end.py sends
one through SNS and SQS on the local stack):

- a crew member's transient bounce (a full mailbox): noted, that email sent again under a key of
  its own after `transient_bounce_retry_hours`, at most `transient_bounce_retries` times, then
  the seat blocks like a permanent bounce; a repeat delivery of one bounce changes nothing;
- the guest's bounce: a note, a `guest-email` block with the fix, one alert; an operations
  alert's bounce: a note; neither holds the booking, which confirms and completes."""

from __future__ import annotations

from typing import Any

from temporalio.client import WorkflowHandle

from charters import contract
from charters.models import EmailBounced
from tests.workflow_harness import (
    EMAIL_OF,
    MEMBERS,
    Harness,
    awaiting_crew,
    confirm,
    needs_test_server,
    result_of,
    status,
    until,
    wait_status,
)

pytestmark = needs_test_server

JORDAN = EMAIL_OF["crew-2"]
FULL = "Transient/MailboxFull: smtp; 452 4.2.2 Mailbox full"
UNKNOWN = "Permanent/General: smtp; 550 5.1.1 <address>: user unknown"


async def bounce(handle: WorkflowHandle[Any, Any], **event: Any) -> None:
    await handle.signal(contract.SIGNAL_EMAIL_BOUNCED, EmailBounced(kind="bounce", **event))


def blocked(on: str) -> Any:
    return lambda s: any(b.on == on for b in s.blocks)


def for_now(notes: list[str]) -> list[str]:
    return [n for n in notes if "for now" in n]


async def test_a_full_mailbox_gets_the_email_again_later_then_blocks_the_seat(
    wf: Harness,
) -> None:
    world = wf.world
    data = await wf.charter(days_ahead=6)  # reminders at 24 h and 48 h
    async with wf.worker():
        handle = await wf.book(data, transient_bounce_retry_hours=3.0, transient_bounce_retries=2)
        await awaiting_crew(handle)
        first = (await until(lambda: world.mail_to(JORDAN, "invite"), "invited"))[0]
        for _ in range(2):  # SNS and SQS deliver at least once: the repeat changes nothing
            await bounce(
                handle, crew_id="crew-2", reason=FULL, transient=True, message_id=first.message_id
            )
        noted = await wait_status(handle, lambda s: bool(for_now(s.notes)), "noted")
        (note,) = for_now(noted.notes)
        assert note.startswith("Jordan Lee's mailbox") and "try 1 of 2" in note
        assert "Mailbox full" in note and JORDAN not in note
        assert not blocked("crew-email:crew-2")(noted) and world.alerts() == []

        await wf.sleep(hours=2)
        assert len(world.mail_to(JORDAN, "invite")) == 1, "not before the delay"
        await wf.sleep(hours=1.5)
        again = await until(lambda: world.mail_to(JORDAN, "invite")[1:], "sent again")
        assert again[0].key == f"{handle.id}:invite:1:crew-2:resend1"
        assert len(world.mail_of("invite")) == 4, "only the full mailbox gets it again"

        await bounce(
            handle, crew_id="crew-2", reason=FULL, transient=True, message_id=again[0].message_id
        )
        await wait_status(handle, lambda s: len(for_now(s.notes)) == 2, "noted again")
        await wf.sleep(hours=3.5)
        third = await until(lambda: world.mail_to(JORDAN, "invite")[2:], "sent a second time")
        assert third[0].key == f"{handle.id}:invite:1:crew-2:resend2"

        await bounce(
            handle, crew_id="crew-2", reason=FULL, transient=True, message_id=third[0].message_id
        )
        seat = await wait_status(handle, blocked("crew-email:crew-2"), "blocked when spent")
        block = next(b for b in seat.blocks if b.on == "crew-email:crew-2")
        assert "Mailbox full" in block.reason and "after every send again" in block.reason
        assert f"charters assign {handle.id} crew-2" in block.fix
        assert seat.stage == "awaiting-crew"
        await until(lambda: len(world.alerts()) == 1, "operations told once")
        await wf.sleep(hours=4)
        assert len(world.mail_to(JORDAN, "invite")) == 3, "nothing more after the block"

        for member in MEMBERS:  # Jordan confirms by phone
            await confirm(handle, member, by="operator")
        done = await wait_status(handle, lambda s: s.stage == "confirmed", "confirmed")
        assert not blocked("crew-email:crew-2")(done)
        await handle.terminate("test done")


async def test_a_send_again_is_dropped_once_the_member_answered(wf: Harness) -> None:
    world = wf.world
    data = await wf.charter(days_ahead=6)
    async with wf.worker():
        handle = await wf.book(data, transient_bounce_retry_hours=3.0)
        await awaiting_crew(handle)
        first = (await until(lambda: world.mail_to(JORDAN, "invite"), "invited"))[0]
        await bounce(
            handle, crew_id="crew-2", reason=FULL, transient=True, message_id=first.message_id
        )
        await wait_status(handle, lambda s: bool(for_now(s.notes)), "noted")
        await confirm(handle, "crew-2")  # the mailbox had room again: Jordan answered
        await wait_status(handle, lambda s: s.crew[2].answer == "accepted", "Jordan in")
        await wf.sleep(hours=4)
        await status(handle)
        assert len(world.mail_to(JORDAN, "invite")) == 1
        await handle.terminate("test done")


async def test_guest_and_operations_bounces_are_recorded_and_hold_nothing(wf: Harness) -> None:
    world = wf.world
    data = await wf.charter(days_ahead=4.25)
    async with wf.worker():
        handle = await wf.book(data)
        await awaiting_crew(handle)
        for _ in range(2):
            await bounce(handle, recipient="guest", reason=UNKNOWN, message_id="m-guest")
        await bounce(handle, recipient="operations", reason=UNKNOWN, message_id="m-ops")
        seen = await wait_status(
            handle,
            lambda s: (
                any("operations alert" in n for n in s.notes)
                and s.blocked_on == contract.BLOCKED_GUEST_EMAIL
            ),
            "both recorded",
        )
        guest_notes = [n for n in seen.notes if n.startswith("the guest did not get our email")]
        assert len(guest_notes) == 1 and "5.1.1" in guest_notes[0]
        assert any("CHARTERS_OPERATIONS_EMAIL" in n for n in seen.notes)
        block = next(b for b in seen.blocks if b.on == contract.BLOCKED_GUEST_EMAIL)
        assert seen.guest_page_url and seen.guest_page_url in block.fix
        assert "guest@example.com" not in block.reason + block.fix
        alerts = await until(lambda: world.alerts(), "the alert")
        assert len(alerts) == 1 and "the guest did not get our email" in alerts[0].subject

        for member in MEMBERS:
            await confirm(handle, member)
        done = await wait_status(handle, lambda s: s.stage == "confirmed", "confirmed")
        assert done.blocked_on == contract.BLOCKED_GUEST_EMAIL, "still shown to operators"
        result = await result_of(handle)
    assert result.outcome == "completed" and len(world.alerts()) == 1
