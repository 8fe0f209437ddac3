"""What the workflow decides about brands and texts, on the fast harness: each crew email of an
opted-in member has one text beside it (none for a number that opted out, and `status` says so),
a text that fails for good blocks only that member's texts, and a booking moves to another brand
once (new page, a notice at the old one, both invalidated, the guest told once, crew links
unchanged). A booking naming its crew by id runs on the roster's details it took at validation."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from charters import contract
from charters.models import (
    CancelBooking,
    CrewConfirmation,
    MoveBrand,
    ResolveBlock,
    Verdict,
)
from charters.roster import RosterMember
from charters.starter.book import start_booking, validate
from tests.workflow_harness import (
    PHONE_OF,
    Harness,
    answers,
    awaiting_crew,
    confirm,
    fast_options,
    needs_test_server,
    result_of,
    status,
    texting,
    until,
    wait_status,
)
from tests.workflow_world import BRANDS

pytestmark = needs_test_server

OLD, NEW = "sailjada.com", "queenofsandiego.com"


async def update(handle: WorkflowHandle[Any, Any], name: str, arg: Any) -> Verdict:
    return await handle.execute_update(name, arg, result_type=Verdict)


async def test_an_opted_in_member_is_texted_once_per_email_and_an_opted_out_one_never(
    wf: Harness,
) -> None:
    """crew-1 opted in: one invitation text, one reminder text, the cancellation text. crew-2
    opted in but their number is on SNS's opt-out list: no text, a note, `opted-out` in status,
    and no cancellation text. The captain has no phone: never texted."""
    world = wf.world
    world.opted_out.add(PHONE_OF["crew-2"])
    data = texting(await wf.charter(days_ahead=6), "crew-1", "crew-2")
    async with wf.worker():
        handle = await wf.book_on(data, OLD)
        await awaiting_crew(handle)
        current = await wait_status(
            handle,
            lambda s: (
                {a.crew_id: a.sms for a in s.crew}
                == {"captain-1": None, "crew-1": "sent", "crew-2": "opted-out"}
            ),
            "texts shown",
        )
        assert any("opted out of texts" in note for note in current.notes), current.notes
        await wf.sleep(hours=25)  # the first reminder falls due
        await until(lambda: world.texts_to(PHONE_OF["crew-1"], "reminder"), "a reminder text")
        await until(lambda: len(world.mail_of("reminder")) == 3, "the reminder emails")
        await update(handle, contract.UPDATE_CANCEL_BOOKING, CancelBooking())
        result = await result_of(handle)
    assert result.outcome == "cancelled"
    kinds = [t.kind for t in world.texts_to(PHONE_OF["crew-1"])]
    assert kinds == ["invite", "reminder", "cancelled"]
    assert world.texts_to(PHONE_OF["crew-2"]) == []
    assert len(world.texts) == len(world.texted) == 3  # once per key
    assert all("840" not in t.body and "$" not in t.body for t in world.texted)
    assert len(world.mail_of("invite")) == 3 and len(world.mail_of("cancelled")) == 3


async def test_a_text_that_fails_for_good_blocks_only_that_members_texts(wf: Harness) -> None:
    """SNS refuses crew-1's number: their texts block (`crew-sms:crew-1`, shown `blocked`),
    while every email goes and the crew confirm; fixed and retried, the text goes once."""
    world = wf.world
    world.refuse_phone(PHONE_OF["crew-1"])
    data = texting(await wf.charter(), "crew-1")
    async with wf.worker():
        handle = await wf.book_on(data, OLD)
        blocked = await wait_status(
            handle, lambda s: any(b.on == "crew-sms:crew-1" for b in s.blocks), "the text blocked"
        )
        assert {a.crew_id: a.sms for a in blocked.crew}["crew-1"] == "blocked"
        assert "charters retry" in (blocked.blocks[-1].fix or "")
        await until(lambda: len(world.mail_of("invite")) == 3, "every invitation emailed")
        for member in ("captain-1", "crew-1", "crew-2"):
            await confirm(handle, member)
        await until(lambda: world.mail_of("captain-summary"), "the captain's summary")
        confirmed = await wait_status(handle, lambda s: s.stage == "confirmed", "confirmed")
        assert any(b.on == "crew-sms:crew-1" for b in confirmed.blocks)
        assert world.texted == []
        world.accept_phone(PHONE_OF["crew-1"])
        await update(
            handle,
            contract.UPDATE_RESOLVE_BLOCK,
            ResolveBlock(step="crew-sms:crew-1", action="retry"),
        )
        after = await wait_status(
            handle,
            lambda s: {a.crew_id: a.sms for a in s.crew}["crew-1"] == "sent",
            "the text sent",
        )
        await handle.terminate("test over")
    assert not any(b.on.startswith("crew-sms") for b in after.blocks)
    assert [t.kind for t in world.texts_to(PHONE_OF["crew-1"])] == ["invite"]
    assert len(world.alerts()) == 1  # the block's one alert


async def test_a_booking_moves_to_another_brand_once(wf: Harness) -> None:
    world = wf.world
    data = await wf.charter()
    async with wf.worker():
        handle = await wf.book_on(data, OLD)
        await awaiting_crew(handle)
        slug = validate(data).page_slug
        old_url, new_url = BRANDS.get(OLD).page_url(slug), BRANDS.get(NEW).page_url(slug)
        assert old_url.endswith(f"/guest-pages/{slug}.html")  # the older site's plain key
        verdict = await update(handle, contract.UPDATE_MOVE_BRAND, MoveBrand(brand=NEW))
        assert verdict.recorded, verdict
        moved = await wait_status(handle, lambda s: s.guest_page_url == new_url, "moved")
        await until(lambda: world.mail_of("guest-moved"), "the guest told")
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await update(handle, contract.UPDATE_MOVE_BRAND, MoveBrand(brand=NEW))
        cause = refused.value.cause
        assert isinstance(cause, ApplicationError) and cause.type == contract.REFUSED_SAME_BRAND
        described = await handle.describe()
        # crew links are the confirmation server's: an answer after the move still counts
        for member in ("captain-1", "crew-1", "crew-2"):
            verdict = await update(
                handle,
                contract.UPDATE_CREW_CONFIRMATION,
                CrewConfirmation(crew_id=member, decision="accept"),
            )
            assert verdict.recorded, verdict
        await wait_status(handle, lambda s: s.stage == "confirmed", "confirmed")
        await update(handle, contract.UPDATE_CANCEL_BOOKING, CancelBooking())
        result = await result_of(handle)
    assert described.typed_search_attributes.get(contract.SA_BRAND) == NEW
    assert await described.memo_value("guest_page_url") == new_url
    assert moved.charter is not None and moved.charter.guest_page_url == new_url
    new_page, notice = world.page_on(NEW, slug), world.page_on(OLD, slug)
    assert new_page is not None and new_page.url == new_url
    assert notice is not None and notice.moved_to == new_url and notice.url == old_url
    paths = [path for inv in world.invalidations.values() for path in inv.paths]
    assert f"/g/{slug}" in paths and f"/guest-pages/{slug}.html" in paths
    assert len([i for i in world.invalidations.values() if ":move:" in i.caller_reference]) == 2
    told = world.mail_of("guest-moved")
    assert len(told) == 1 and f"moved from {old_url} to {new_url}" in told[0].subject
    (event,) = world.scc_for(data["booking_ref"])
    assert event.guest_page_url == new_url
    # what came after the move followed it: the cancellation notice is on the new site
    assert result.outcome == "cancelled" and result.guest_page_url == new_url
    assert new_page.cancelled and world.page_on(NEW, slug) is new_page


async def test_a_booking_naming_its_crew_by_id_runs_on_the_roster_snapshot(wf: Harness) -> None:
    """Validation fills the members in from the roster; the booking keeps that snapshot, so a
    roster change afterwards reaches no email or text of this booking."""
    world = wf.world
    for member_id, name, email, roles, phone in (
        ("captain-1", "Sam Harbor", "captain@sailjada.com", ["captain"], None),
        ("crew-1", "Alex Rivera", "alex@sailjada.com", ["crew"], PHONE_OF["crew-1"]),
        ("crew-2", "Jordan Lee", "jordan@sailjada.com", ["crew"], None),
    ):
        world.roster[member_id] = RosterMember(
            id=member_id,
            name=name,
            email=email,
            phone=phone,
            hourly_rate=Decimal("50.00" if roles == ["captain"] else "25.00"),
            roles=roles,  # type: ignore[arg-type]
            channels=["email", "sms"] if phone else ["email"],  # type: ignore[list-item]
        )
    inline = await wf.charter()
    by_id = {**inline, "captain": "captain-1", "crew": ["crew-1", "crew-2"]}
    members = {m.id: m for _, m in world.roster.items()}
    booking = validate(
        {
            **inline,
            "captain": members["captain-1"].as_member().model_dump(mode="json"),
            "crew": [members[i].as_member().model_dump(mode="json") for i in ("crew-1", "crew-2")],
        }
    )
    options = fast_options(f"https://guests.example/g/{booking.page_slug}")
    async with wf.worker():
        handle = await start_booking(wf.client, wf.settings, booking, options, raw=by_id)
        await awaiting_crew(handle)
        world.roster["crew-1"] = world.roster["crew-1"].model_copy(
            update={"email": "alex.new@sailjada.com", "name": "Alex Changed"}
        )
        for member in ("captain-1", "crew-1", "crew-2"):
            await confirm(handle, member)
        await wf.sleep(days=5)
        result = await result_of(handle)
        current = await status(handle)
    assert result.outcome == "completed"
    assert answers(current) == dict.fromkeys(("captain-1", "crew-1", "crew-2"), "accepted")
    assert {a.crew_id: a.name for a in current.crew}["crew-1"] == "Alex Rivera"
    assert [m.kind for m in world.mail_to("alex@sailjada.com")] == ["invite", "day-of"]
    assert world.mail_to("alex.new@sailjada.com") == []
    assert [t.kind for t in world.texts_to(PHONE_OF["crew-1"])] == ["invite", "day-of"]
