"""What the booking does with each kind of bounce, on the local stack (its worker, moto's SES):
the bounces are signalled as the worker's listener delivers them (tests/test_ses_bounces.py reads
them from SES's own events, tests/test_bounce_end_to_end.py sends one through SNS and SQS).

- a crew member's transient bounce (a full mailbox): noted, that email sent again under a key of
  its own after `transient_bounce_retry_hours`, at most `transient_bounce_retries` times, then
  the seat blocks like a permanent bounce;
- the guest's bounce: a note, a `guest-email` block with the fix, one alert; an operations
  alert's bounce: a note; neither holds the booking."""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio.client import WorkflowHandle

from charters import contract
from charters.models import BookingResult, BookingStatus, CrewConfirmation, EmailBounced
from charters.starter.book import booking_options, start_booking, validate
from tests.conftest import Booker
from tests.support import booking_data, eventually, mail_for

FULL = "Transient/MailboxFull: smtp; 452 4.2.2 Mailbox full"
UNKNOWN = "Permanent/General: smtp; 550 5.1.1 <address>: user unknown"
JORDAN = "jordan@sailjada.com"
CREW = ("captain-1", "crew-1", "crew-2")


async def book(booker: Booker, **options: Any) -> tuple[str, WorkflowHandle[Any, Any]]:
    booking = validate(booking_data())
    opts = booking_options(booker.settings, booking).model_copy(update=options)
    handle = await start_booking(booker.client, booker.settings, booking, opts)
    await booker.wait_stage(handle.id, "awaiting-crew")
    return booking.booking_ref, handle


async def sent_ids(handle: WorkflowHandle[Any, Any]) -> dict[str, str]:
    result = await handle.query(contract.QUERY_RESULT, result_type=BookingResult)
    return result.crew_email_ids


async def bounce(handle: WorkflowHandle[Any, Any], **event: Any) -> None:
    await handle.signal(contract.SIGNAL_EMAIL_BOUNCED, EmailBounced(kind="bounce", **event))


async def until(
    booker: Booker, handle: WorkflowHandle[Any, Any], check: Any, what: str
) -> BookingStatus:
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        current = await booker.status(handle.id)
        if check(current):
            return current
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{handle.id}: never {what}; status: {current!r}")
        await asyncio.sleep(0.2)


def invitations(booker: Booker, ref: str, to: str) -> int:
    return len([m for m in mail_for(booker.settings, ref) if m.to == [to] and m.magic_links()])


def alerts(booker: Booker, ref: str) -> list[str]:
    ops = booker.settings.operations_email
    return [m.subject for m in mail_for(booker.settings, ref) if m.to == [ops]]


async def confirm_all(handle: WorkflowHandle[Any, Any]) -> None:
    for member in CREW:
        await handle.signal(
            contract.SIGNAL_CREW_CONFIRMATION,
            CrewConfirmation(crew_id=member, decision="accept", by="operator"),
        )


async def test_a_full_mailbox_gets_the_email_again_later_then_blocks_the_seat(
    booker: Booker,
) -> None:
    ref, handle = await book(
        booker, transient_bounce_retry_hours=4 / 3600, transient_bounce_retries=1
    )
    try:
        await eventually(lambda: invitations(booker, ref, JORDAN) == 1, what="the invitation")
        first = (await sent_ids(handle))["invite:1:crew-2"]
        for _ in range(2):  # SNS and SQS deliver at least once: the repeat changes nothing
            await bounce(handle, crew_id="crew-2", reason=FULL, transient=True, message_id=first)
        noted = await until(booker, handle, lambda s: any("for now" in n for n in s.notes), "noted")
        (note,) = [n for n in noted.notes if "for now" in n]
        assert note.startswith("Jordan Lee's mailbox") and "try 1 of 1" in note
        assert "Mailbox full" in note and JORDAN not in note
        assert not any(b.on == "crew-email:crew-2" for b in noted.blocks)

        await eventually(
            lambda: invitations(booker, ref, JORDAN) == 2, what="the invitation sent again"
        )
        ids = await sent_ids(handle)
        assert "invite:1:crew-2:resend1" in ids
        assert invitations(booker, ref, "alex@sailjada.com") == 1, "only the full mailbox"

        again = ids["invite:1:crew-2:resend1"]
        await bounce(handle, crew_id="crew-2", reason=FULL, transient=True, message_id=again)
        blocked = await until(
            booker,
            handle,
            lambda s: any(b.on == "crew-email:crew-2" for b in s.blocks),
            "blocked once the sends again are spent",
        )
        block = next(b for b in blocked.blocks if b.on == "crew-email:crew-2")
        assert "Mailbox full" in block.reason and "after every send again" in block.reason
        assert f"charters assign {handle.id} crew-2" in block.fix
        await eventually(lambda: alerts(booker, ref), what="the alert")
        assert alerts(booker, ref) == [f"{ref}: Jordan Lee did not get our email"]
        await asyncio.sleep(6)  # past another retry delay: nothing more is sent
        assert invitations(booker, ref, JORDAN) == 2

        await confirm_all(handle)  # the member confirms by phone
        confirmed = await booker.wait_stage(handle.id, "confirmed")
        assert not any(b.on == "crew-email:crew-2" for b in confirmed.blocks)
    finally:
        await handle.terminate("test done")


async def test_guest_and_operations_bounces_are_recorded_and_hold_nothing(
    booker: Booker,
) -> None:
    ref, handle = await book(booker)
    try:
        for _ in range(2):
            await bounce(handle, recipient="guest", reason=UNKNOWN, message_id="m-guest")
        await bounce(handle, recipient="operations", reason=UNKNOWN, message_id="m-ops")
        seen = await until(
            booker,
            handle,
            lambda s: (
                any("operations alert" in n for n in s.notes)
                and s.blocked_on == contract.BLOCKED_GUEST_EMAIL
            ),
            "both bounces recorded",
        )
        guest_notes = [n for n in seen.notes if n.startswith("the guest did not get our email")]
        assert len(guest_notes) == 1 and "5.1.1" in guest_notes[0]
        assert any("CHARTERS_OPERATIONS_EMAIL" in n for n in seen.notes)
        block = next(b for b in seen.blocks if b.on == contract.BLOCKED_GUEST_EMAIL)
        assert seen.guest_page_url and seen.guest_page_url in block.fix
        assert "guest@example.com" not in block.reason + block.fix
        assert not any(b.on.startswith("crew-email") for b in seen.blocks)
        await eventually(lambda: alerts(booker, ref), what="the alert")
        await asyncio.sleep(1)
        assert alerts(booker, ref) == [f"{ref}: the guest did not get our email"]

        await confirm_all(handle)
        confirmed = await booker.wait_stage(handle.id, "confirmed")
        assert confirmed.blocked_on == contract.BLOCKED_GUEST_EMAIL, "still shown to operators"
        assert confirmed.steps["captain_summary"] == "done"
    finally:
        await handle.terminate("test done")
