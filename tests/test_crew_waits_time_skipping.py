"""Crew waits over days of workflow time, on the time-skipping test server with the outside
world in memory (tests/workflow_harness.py): reminders, the confirmation deadline, declines and
replacements, operators answering for a member, early and repeated answers.

Time only moves under `wf.sleep(...)` (and while awaiting a result); in between, the tests talk
to the workflow with signals and the `status` query, and count what was sent in the world's
email ledger (what SES would have delivered, once per key)."""

from __future__ import annotations

from charters import contract
from charters.models import AssignCrew
from tests.workflow_harness import (
    EMAIL_OF,
    MEMBERS,
    PHONE_OF,
    REPLACEMENT,
    Harness,
    answers,
    awaiting_crew,
    confirm,
    needs_test_server,
    reminders_sent,
    result_of,
    status,
    texting,
    until,
    wait_status,
)
from tests.workflow_world import World

pytestmark = needs_test_server


def reminder_counts(world: World) -> dict[str, int]:
    return {member: len(world.mail_to(address, "reminder")) for member, address in EMAIL_OF.items()}


async def invites_sent(world: World, count: int = 3) -> None:
    await until(lambda: len(world.mail_of("invite")) >= count, f"{count} invites")


# ---- (a) reminders ---------------------------------------------------------------------------


async def test_reminders_after_a_day_at_most_twice_and_none_for_who_accepted(wf: Harness) -> None:
    world = wf.world
    data = await wf.charter(days_ahead=6)  # deadline (start - 48 h) after the reminders
    async with wf.worker():
        handle = await wf.book(data)
        await awaiting_crew(handle)
        await invites_sent(world)
        await confirm(handle, "captain-1")
        await wait_status(handle, lambda s: answers(s)["captain-1"] == "accepted", "captain in")

        await wf.sleep(hours=23)
        assert reminder_counts(world) == {
            "captain-1": 0,
            "crew-1": 0,
            "crew-2": 0,
            "crew-9": 0,
        }, "no reminder before reminder_after_hours"

        await wf.sleep(hours=2)  # 25 h
        first = await wait_status(
            handle,
            lambda s: reminders_sent(s)["crew-1"] == 1 and reminders_sent(s)["crew-2"] == 1,
            "reminded once",
        )
        assert reminders_sent(first) == {"captain-1": 0, "crew-1": 1, "crew-2": 1}
        assert reminder_counts(world) == {"captain-1": 0, "crew-1": 1, "crew-2": 1, "crew-9": 0}

        await wf.sleep(hours=24)  # 49 h: the second and last
        await wait_status(
            handle,
            lambda s: reminders_sent(s)["crew-1"] == 2 and reminders_sent(s)["crew-2"] == 2,
            "reminded twice",
        )
        await wf.sleep(hours=40)  # 89 h: no third one (the deadline is at 96 h)
        second = await status(handle)
        assert reminders_sent(second) == {"captain-1": 0, "crew-1": 2, "crew-2": 2}
        assert reminder_counts(world) == {"captain-1": 0, "crew-1": 2, "crew-2": 2, "crew-9": 0}
        assert second.blocked_on == contract.BLOCKED_CREW_CONFIRMATIONS
        assert world.alerts() == []

        await confirm(handle, "crew-1")
        await confirm(handle, "crew-2")
        result = await result_of(handle)
    assert result.outcome == "completed"
    assert {a.crew_id: (a.answer, a.reminders_sent) for a in result.confirmations} == {
        "captain-1": ("accepted", 0),
        "crew-1": ("accepted", 2),
        "crew-2": ("accepted", 2),
    }


# ---- (b) the confirmation deadline -----------------------------------------------------------


async def test_deadline_alerts_operations_once_and_blocks_on_crew_deadline(wf: Harness) -> None:
    world = wf.world
    data = await wf.charter(days_ahead=4.25)  # deadline at ~54 h, after both reminders
    async with wf.worker():
        handle = await wf.book(data)
        await awaiting_crew(handle)
        await invites_sent(world)

        await wf.sleep(hours=50)
        before = await wait_status(
            handle, lambda s: reminders_sent(s)["crew-2"] == 2, "reminded twice"
        )
        assert before.blocked_on == contract.BLOCKED_CREW_CONFIRMATIONS
        assert world.alerts() == []

        await wf.sleep(hours=6)  # past start - 48 h
        blocked = await wait_status(
            handle, lambda s: s.blocked_on == "crew-deadline", "blocked on the deadline"
        )
        assert blocked.stage == "awaiting-crew"
        assert blocked.blocked_reason and "Sam Harbor" in blocked.blocked_reason
        alerts = await until(lambda: world.alerts(), "the deadline alerted")
        assert len(alerts) == 1, alerts
        assert "crew not confirmed by the deadline" in alerts[0].subject
        assert "Jordan Lee" in alerts[0].subject  # the world keeps subject and body together

        await wf.sleep(hours=30)  # still waiting, close to departure: no second alert
        assert len(world.alerts()) == 1
        assert (await status(handle)).blocked_on == "crew-deadline"
        assert reminder_counts(world)["crew-1"] == 2

        for member in MEMBERS:
            await confirm(handle, member)
        result = await result_of(handle)
    assert result.outcome == "completed"
    assert all(a.answer == "accepted" for a in result.confirmations)


async def test_confirmed_booking_is_no_longer_blocked_on_the_deadline(wf: Harness) -> None:
    """A booking escalated at the deadline and then confirmed must not keep
    BlockedOn=crew-deadline (status query and search attribute) after it completes."""
    data = await wf.charter(days_ahead=4.25)
    async with wf.worker():
        handle = await wf.book(data)
        await awaiting_crew(handle)
        await wf.sleep(hours=56)
        await wait_status(handle, lambda s: s.blocked_on == "crew-deadline", "escalated")
        for member in MEMBERS:
            await confirm(handle, member)
        result = await result_of(handle)
        final = await status(handle)
        described = await handle.describe()
    assert result.outcome == "completed"
    assert final.stage == "completed"
    assert final.blocked_on is None, final.blocked_reason
    assert described.typed_search_attributes.get(contract.SA_BLOCKED_ON) is None


# ---- (c) decline, then a replacement ---------------------------------------------------------


async def test_decline_alerts_once_and_a_replacement_is_invited_and_awaited(wf: Harness) -> None:
    """A decline alerts once; the replacement is invited, awaited, and named by the SCC event
    and the guest page in place of the member who declined."""
    world = wf.world
    data = await wf.charter()
    ref = data["booking_ref"]
    async with wf.worker():
        handle = await wf.book(data)
        await awaiting_crew(handle)
        await invites_sent(world)

        await confirm(handle, "crew-2", "decline")
        declined = await wait_status(
            handle, lambda s: s.blocked_on == contract.BLOCKED_CREW_DECLINED, "blocked on decline"
        )
        assert answers(declined)["crew-2"] == "declined"
        # more wake-ups while crew-2 stays declined must not alert operations again
        await confirm(handle, "captain-1")
        await confirm(handle, "crew-1")
        await wait_status(handle, lambda s: answers(s)["crew-1"] == "accepted", "crew-1 in")
        alerts = await until(lambda: world.alerts(), "the decline alerted")
        assert [a.subject.splitlines()[0] for a in alerts] == [f"{ref}: Jordan Lee declined"]
        assert f"charters assign {handle.id} crew-2" in alerts[0].subject
        assert (await status(handle)).blocked_on == contract.BLOCKED_CREW_DECLINED

        await handle.signal(
            contract.SIGNAL_ASSIGN_CREW, AssignCrew(replaces="crew-2", member=REPLACEMENT)
        )
        waiting = await wait_status(
            handle, lambda s: REPLACEMENT.id in answers(s), "replacement assigned"
        )
        assert answers(waiting) == {
            "captain-1": "accepted",
            "crew-1": "accepted",
            "crew-2": "replaced",
            "crew-9": "pending",
        }
        await until(lambda: world.mail_to(REPLACEMENT.email, "invite"), "the newcomer's invite")
        waiting = await wait_status(
            handle,
            lambda s: s.blocked_on == contract.BLOCKED_CREW_CONFIRMATIONS,
            "waiting on the replacement",
        )
        assert waiting.stage == "awaiting-crew"
        assert waiting.blocked_reason and "Casey Morgan" in waiting.blocked_reason
        assert waiting.charter and [s.id for s in waiting.charter.crew] == ["crew-1", "crew-9"]
        # the crew system and the guest page name the new crew
        await until(
            lambda: world.scc_for(ref)[0].crew == ["captain-1", "crew-1", "crew-9"], "SCC updated"
        )
        await until(lambda: "Casey Morgan" in world.pages[data["slug"]].crew, "page updated")
        assert "Jordan Lee" not in world.pages[data["slug"]].crew

        # a late answer from the replaced member changes nothing
        await confirm(handle, "crew-2")
        await confirm(handle, REPLACEMENT.id)
        result = await result_of(handle)

    assert result.outcome == "completed"
    by_id = {a.crew_id: a for a in result.confirmations}
    assert by_id.get("crew-2") is None or by_id["crew-2"].answer == "replaced"
    assert {k: a.answer for k, a in by_id.items() if k != "crew-2"} == {
        "captain-1": "accepted",
        "crew-1": "accepted",
        "crew-9": "accepted",
    }
    assert f"invite:1:{REPLACEMENT.id}" in result.crew_email_ids
    assert len(world.mail_to(REPLACEMENT.email, "invite")) == 1
    assert len(world.alerts()) == 1
    summary = world.mail_of("captain-summary")
    assert len(summary) == 1 and summary[0].to == EMAIL_OF["captain-1"]
    assert "Casey Morgan" in summary[0].subject
    assert world.mail_of("released") == [], "who declined is not told they are off the crew"


async def test_a_member_replaced_before_declining_is_told_once_they_are_off(wf: Harness) -> None:
    """An operator gives an accepted member's seat to someone else: the member is told once,
    by email and by text as they were asked, that they are no longer needed (the newcomer is
    asked); one replaced before anyone was asked is told nothing, having never heard of the
    charter."""
    world = wf.world
    world.scc_key = "missing"
    early = await wf.charter()
    data = texting(await wf.charter(), "crew-2")
    async with wf.worker():
        waiting = await wf.book(early, scc_retry_max_interval_seconds=60)
        await wait_status(
            waiting, lambda s: s.blocked_on == contract.BLOCKED_SCC_KEY_HASH, "blocked on the key"
        )
        await waiting.signal(
            contract.SIGNAL_ASSIGN_CREW, AssignCrew(replaces="crew-1", member=REPLACEMENT)
        )
        await wait_status(waiting, lambda s: REPLACEMENT.id in answers(s), "seat taken")
        world.scc_key = "ok"
        handle = await wf.book(data)
        await awaiting_crew(handle)
        await invites_sent(world, 6)
        await confirm(handle, "crew-2")
        await wait_status(handle, lambda s: answers(s)["crew-2"] == "accepted", "crew-2 in")
        await handle.signal(
            contract.SIGNAL_ASSIGN_CREW, AssignCrew(replaces="crew-2", member=REPLACEMENT)
        )
        await until(lambda: world.mail_of("released"), "the member told")
        await until(lambda: world.texts_to(PHONE_OF["crew-2"], "released"), "and texted")
        await wf.sleep(hours=30)  # reminders and other wake-ups send nothing more
        await handle.terminate("test over")
        await waiting.terminate("test over")
    released = world.mail_of("released")
    assert [(m.to, data["booking_ref"] in m.subject) for m in released] == [
        (EMAIL_OF["crew-2"], True)
    ]
    assert len(world.mail_to(REPLACEMENT.email, "invite")) == 2  # one per booking
    assert len(world.texts_to(PHONE_OF["crew-2"], "released")) == 1


async def test_reminders_stay_capped_while_a_member_is_declined(wf: Harness) -> None:
    """A declined member is never reminded, and must not keep the others' reminder clock at
    zero: after a day each pending member has had one reminder, and hours later still one (a
    loop reminding on every wake-up would show here)."""
    world = wf.world
    data = await wf.charter(days_ahead=6)
    async with wf.worker():
        handle = await wf.book(data)
        await awaiting_crew(handle)
        await confirm(handle, "crew-2", "decline")
        await wait_status(
            handle, lambda s: s.blocked_on == contract.BLOCKED_CREW_DECLINED, "declined"
        )
        await wf.sleep(hours=24, seconds=5)
        await wait_status(
            handle,
            lambda s: reminders_sent(s)["crew-1"] == 1 and reminders_sent(s)["captain-1"] == 1,
            "reminded",
        )
        await wf.sleep(hours=6)
        assert reminder_counts(world) == {"captain-1": 1, "crew-1": 1, "crew-2": 0, "crew-9": 0}
        assert reminders_sent(await status(handle))["crew-1"] == 1
        await handle.terminate("test over")


async def test_a_late_replacement_does_not_push_others_past_max_reminders(wf: Harness) -> None:
    """Crew-2 never answers; after both reminders operations replace them. The others have had
    their max_reminders and get no more; the newcomer is not reminded the moment they are
    invited, but a day later."""
    world = wf.world
    data = await wf.charter(days_ahead=6)
    async with wf.worker():
        handle = await wf.book(data)
        await awaiting_crew(handle)
        await wf.sleep(hours=49)
        await wait_status(handle, lambda s: reminders_sent(s)["crew-2"] == 2, "reminded x2")
        await handle.signal(
            contract.SIGNAL_ASSIGN_CREW, AssignCrew(replaces="crew-2", member=REPLACEMENT)
        )
        await wait_status(handle, lambda s: REPLACEMENT.id in answers(s), "replaced")
        await until(lambda: world.mail_to(REPLACEMENT.email, "invite"), "the newcomer's invite")
        assert reminder_counts(world) == {"captain-1": 2, "crew-1": 2, "crew-2": 2, "crew-9": 0}
        await wf.sleep(hours=25)  # the newcomer's own first reminder, a day after the invite
        await wait_status(handle, lambda s: reminders_sent(s)[REPLACEMENT.id] == 1, "reminded")
        assert reminder_counts(world) == {"captain-1": 2, "crew-1": 2, "crew-2": 2, "crew-9": 1}
        await handle.terminate("test over")


async def test_operator_confirms_a_replacement_right_after_assigning(wf: Harness) -> None:
    """`charters assign` then `charters confirm --by operator:...` for the newcomer, back to
    back: both signals can reach the workflow in one task. The confirmation must not be lost."""
    data = await wf.charter()
    async with wf.worker(cached=False):
        handle = await wf.book(data)
        await awaiting_crew(handle)
        await invites_sent(wf.world)
    # no worker polls now, so both signals are delivered in the same workflow task
    await handle.signal(
        contract.SIGNAL_ASSIGN_CREW, AssignCrew(replaces="crew-2", member=REPLACEMENT)
    )
    await confirm(handle, REPLACEMENT.id, by="operator:dana")
    async with wf.worker(cached=False):
        current = await wait_status(
            handle,
            lambda s: answers(s).get(REPLACEMENT.id) == "accepted",
            "the replacement confirmed by dana",
        )
        assert {a.crew_id: a.by for a in current.crew}[REPLACEMENT.id] == "operator:dana"
        await handle.terminate("test over")


# ---- (d) operator override -------------------------------------------------------------------


async def test_operator_confirms_on_a_members_behalf(wf: Harness) -> None:
    data = await wf.charter()
    async with wf.worker():
        handle = await wf.book(data)
        await awaiting_crew(handle)
        await confirm(handle, "crew-2", by="operator:dana")
        current = await wait_status(
            handle, lambda s: answers(s)["crew-2"] == "accepted", "crew-2 confirmed by dana"
        )
        by = {a.crew_id: a.by for a in current.crew}
        assert by == {"captain-1": None, "crew-1": None, "crew-2": "operator:dana"}
        await confirm(handle, "captain-1")
        await confirm(handle, "crew-1")
        result = await result_of(handle)
    assert {a.crew_id: (a.answer, a.by) for a in result.confirmations} == {
        "captain-1": ("accepted", "crew"),
        "crew-1": ("accepted", "crew"),
        "crew-2": ("accepted", "operator:dana"),
    }


# ---- (e) early and duplicate signals ---------------------------------------------------------


async def test_early_and_duplicate_confirmations(wf: Harness) -> None:
    """Signals sent before any worker runs land in the workflow's first task, before validation;
    they are kept and applied once the crew is known. Repeats change nothing."""
    world = wf.world
    data = await wf.charter()
    handle = await wf.book(data)
    await confirm(handle, "crew-1")
    await confirm(handle, "crew-1")  # duplicate, still before validation
    await confirm(handle, "crew-2", by="operator:dana")
    await confirm(handle, "nobody")  # unknown member: ignored, not a failure

    async with wf.worker():
        current = await awaiting_crew(handle)
        assert answers(current) == {
            "captain-1": "pending",
            "crew-1": "accepted",
            "crew-2": "accepted",
        }
        assert {a.crew_id: a.by for a in current.crew}["crew-2"] == "operator:dana"
        await invites_sent(world)

        await confirm(handle, "crew-1")  # duplicate after validation
        await confirm(handle, "crew-2")  # same decision, other sender: first answer stands
        again = await status(handle)
        assert answers(again) == answers(current)
        assert {a.crew_id: a.by for a in again.crew}["crew-2"] == "operator:dana"

        await confirm(handle, "captain-1")
        await confirm(handle, "captain-1")
        result = await result_of(handle)

    assert result.outcome == "completed"
    assert {a.crew_id: (a.answer, a.by) for a in result.confirmations} == {
        "captain-1": ("accepted", "crew"),
        "crew-1": ("accepted", "crew"),
        "crew-2": ("accepted", "operator:dana"),
    }
    assert len(world.mail_of("invite")) == 3
    assert len(world.mail_of("captain-summary")) == 1
    history = await handle.fetch_history()
    signals = [
        e for e in history.events if e.HasField("workflow_execution_signaled_event_attributes")
    ]
    assert len(signals) == 8
