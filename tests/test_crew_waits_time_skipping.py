"""Crew waits over days of workflow time, on the time-skipping test server.

Each test gets a fresh time-skipping environment (the Java test server; its clock is global, so
one per test keeps charters "4 days ahead" of a clock no other test moved) and an in-process
worker on a unique task queue whose activities hit the session stack's moto and stand-ins, so the
reminders and alerts are real SES (moto) mail.

Time only moves under `env.sleep(...)` (and while awaiting `handle.result()`); in between, the
tests talk to the workflow with signals and the `status` query, never updates (the test server
does not skip time while a client waits on an update).

The Java test server refuses search attributes it does not know ("search attribute BookingStage
is not defined": the start with `search_attributes=` fails, and every workflow task that upserts
one fails and is retried forever), so each environment registers the product's attributes
through the operator service first, as the dev stack does with `--search-attribute`.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
from charters_dev.mailbox import Mail
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from charters import contract
from charters.models import (
    AssignCrew,
    BookingOptions,
    BookingResult,
    BookingStatus,
    CancelBooking,
    CrewConfirmation,
    CrewMember,
)
from charters.settings import Settings
from charters.starter.book import booking_options, start_booking, validate
from charters.workflows.charter_booking import CharterBookingWorkflow
from tests.support import booking_data, eventually, mail_for, new_ref

T = TypeVar("T")

TEST_SERVER = Path(sys.executable).parent / "temporal-test-server"
MEMBERS = ("captain-1", "crew-1", "crew-2")
REPLACEMENT = CrewMember(
    id="crew-9", name="Casey Morgan", email="casey@sailjada.com", hourly_rate=Decimal("25.00")
)

pytestmark = pytest.mark.skipif(not TEST_SERVER.exists(), reason=f"no {TEST_SERVER}")


# ---- harness ---------------------------------------------------------------------------------


async def register_search_attributes(client: Client) -> None:
    """The test server knows no custom search attribute until told (see the module docstring)."""
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={
                key.name: IndexedValueType.ValueType(key.indexed_value_type)
                for key in contract.SEARCH_ATTRIBUTES
            },
        )
    )


class Skipper:
    """One time-skipping environment plus the settings of its worker's task queue."""

    def __init__(self, env: WorkflowEnvironment, settings: Settings, acts: Sequence[Any]) -> None:
        self.env = env
        self.client = env.client
        self.settings = settings
        self._activities = acts

    @asynccontextmanager
    async def worker(self, cached: bool = True) -> AsyncIterator[Worker]:
        """`cached=False` for a worker that is stopped and replaced mid-workflow: the test
        server does not hand a task on a dead worker's sticky queue to the next one in time."""
        with ThreadPoolExecutor(16) as executor:
            async with Worker(
                self.client,
                task_queue=self.settings.task_queue,
                workflows=[CharterBookingWorkflow],
                activities=list(self._activities),
                activity_executor=executor,
                max_cached_workflows=1000 if cached else 0,  # 1000: the SDK default
            ) as worker:
                yield worker

    def options(self, data: dict[str, Any]) -> BookingOptions:
        return booking_options(self.settings, validate(data)).model_copy(
            update={
                "reminder_after_hours": 24.0,
                "max_reminders": 2,
                "confirm_deadline_hours_before": 48.0,
            }
        )

    async def charter(self, days_ahead: float = 4.25, **overrides: Any) -> dict[str, Any]:
        """Booking data for a charter `days_ahead` of the test server's clock (local time)."""
        now = await self.env.get_current_time()
        starts = (now + timedelta(days=days_ahead)).astimezone(ZoneInfo("America/Los_Angeles"))
        starts = starts.replace(minute=0, second=0, microsecond=0, tzinfo=None)
        return booking_data(new_ref("TS"), starts_at=starts.isoformat(), **overrides)

    async def book(
        self, data: dict[str, Any], **options: Any
    ) -> WorkflowHandle[Any, BookingResult]:
        opts = self.options(data).model_copy(update=options)
        return await start_booking(self.client, self.settings, validate(data), opts)

    async def sleep(self, **delta: float) -> None:
        await self.env.sleep(timedelta(**delta))


@asynccontextmanager
async def skipper(
    settings: Settings, acts: Sequence[Any], data_converter: DataConverter
) -> AsyncIterator[Skipper]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(TEST_SERVER), data_converter=data_converter
    )
    try:
        await register_search_attributes(env.client)
        queue = f"ts-{uuid.uuid4().hex[:10]}"
        yield Skipper(env, settings.model_copy(update={"task_queue": queue}), acts)
    finally:
        await env.shutdown()


# ---- talking to the workflow -----------------------------------------------------------------


async def status(handle: WorkflowHandle[Any, Any]) -> BookingStatus:
    return await handle.query(contract.QUERY_STATUS, result_type=BookingStatus)


async def wait_status(
    handle: WorkflowHandle[Any, Any],
    check: Callable[[BookingStatus], bool],
    what: str,
    timeout: float = 20.0,
) -> BookingStatus:
    """Polls the status query in real time (the test server's clock is locked meanwhile)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    current = await status(handle)
    while not check(current):
        if loop.time() > deadline:
            raise AssertionError(f"{handle.id}: never {what}; status: {current!r}")
        await asyncio.sleep(0.1)
        current = await status(handle)
    return current


async def awaiting_crew(handle: WorkflowHandle[Any, Any]) -> BookingStatus:
    return await wait_status(
        handle,
        lambda s: s.stage == "awaiting-crew" and s.steps["confirmations"] == "running",
        "awaiting crew",
    )


async def confirm(
    handle: WorkflowHandle[Any, Any], crew_id: str, decision: str = "accept", by: str = "crew"
) -> None:
    await handle.signal(
        contract.SIGNAL_CREW_CONFIRMATION,
        CrewConfirmation(crew_id=crew_id, decision=decision, by=by),  # type: ignore[arg-type]
    )


def answers(current: BookingStatus) -> dict[str, str]:
    return {a.crew_id: a.answer for a in current.crew}


def reminders_sent(current: BookingStatus) -> dict[str, int]:
    return {a.crew_id: a.reminders_sent for a in current.crew}


async def result_of(handle: WorkflowHandle[Any, BookingResult]) -> BookingResult:
    return await asyncio.wait_for(handle.result(), timeout=30)


# ---- reading the mail ------------------------------------------------------------------------

EMAIL_OF = {
    "captain-1": "captain@sailjada.com",
    "crew-1": "alex@sailjada.com",
    "crew-2": "jordan@sailjada.com",
    REPLACEMENT.id: REPLACEMENT.email,
}


def mails(settings: Settings, ref: str, prefix: str = "", to: str | None = None) -> list[Mail]:
    return [
        m
        for m in mail_for(settings, ref)
        if m.subject.startswith(prefix) and (to is None or m.to == [to])
    ]


def reminder_counts(settings: Settings, ref: str) -> dict[str, int]:
    found = mails(settings, ref, "Reminder:")
    return {member: sum(m.to == [addr] for m in found) for member, addr in EMAIL_OF.items()}


def ops_alerts(settings: Settings, ref: str) -> list[Mail]:
    return mails(settings, ref, ref, to=settings.operations_email)


async def mail_settles(
    read: Callable[[], T], what: str, quiet: float = 1.0, timeout: float = 20.0
) -> T:
    """Waits until `read()` gives the same answer for `quiet` seconds (mail still in flight
    after a skip lands first), then returns it."""
    loop = asyncio.get_running_loop()
    last = await asyncio.to_thread(read)
    stable_since = loop.time()
    deadline = stable_since + timeout
    while loop.time() - stable_since < quiet:
        if loop.time() > deadline:
            raise AssertionError(f"{what} never settled; last: {last!r}")
        await asyncio.sleep(0.2)
        now = await asyncio.to_thread(read)
        if now != last:
            last, stable_since = now, loop.time()
    return last


async def invites_sent(settings: Settings, ref: str, count: int = 3) -> None:
    await eventually(
        lambda: len(mails(settings, ref, "Can you crew")) >= count, what=f"{count} invites"
    )


# ---- (a) reminders ---------------------------------------------------------------------------


async def test_reminders_after_a_day_at_most_twice_and_none_for_who_accepted(ts: Skipper) -> None:
    data = await ts.charter(days_ahead=6)  # deadline (start - 48 h) after the reminders
    ref = data["booking_ref"]
    async with ts.worker():
        handle = await ts.book(data)
        await awaiting_crew(handle)
        await invites_sent(ts.settings, ref)
        await confirm(handle, "captain-1")
        await wait_status(handle, lambda s: answers(s)["captain-1"] == "accepted", "captain in")

        await ts.sleep(hours=23)
        assert await mail_settles(lambda: reminder_counts(ts.settings, ref), "reminders") == {
            "captain-1": 0,
            "crew-1": 0,
            "crew-2": 0,
            "crew-9": 0,
        }, "no reminder before reminder_after_hours"

        await ts.sleep(hours=2)  # 25 h
        first = await wait_status(
            handle, lambda s: reminders_sent(s)["crew-2"] == 1, "reminded once"
        )
        assert reminders_sent(first) == {"captain-1": 0, "crew-1": 1, "crew-2": 1}
        assert await mail_settles(lambda: reminder_counts(ts.settings, ref), "reminders") == {
            "captain-1": 0,
            "crew-1": 1,
            "crew-2": 1,
            "crew-9": 0,
        }

        await ts.sleep(hours=24)  # 49 h: the second and last
        await wait_status(handle, lambda s: reminders_sent(s)["crew-2"] == 2, "reminded twice")
        await ts.sleep(hours=40)  # 89 h: no third one (the deadline is at 96 h)
        second = await status(handle)
        assert reminders_sent(second) == {"captain-1": 0, "crew-1": 2, "crew-2": 2}
        assert await mail_settles(lambda: reminder_counts(ts.settings, ref), "reminders") == {
            "captain-1": 0,
            "crew-1": 2,
            "crew-2": 2,
            "crew-9": 0,
        }
        assert second.blocked_on == contract.BLOCKED_CREW_CONFIRMATIONS
        assert ops_alerts(ts.settings, ref) == []

        reminder = mails(ts.settings, ref, "Reminder:", to=EMAIL_OF["crew-1"])[0]
        assert set(reminder.magic_links()) == {"accept", "decline"}

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


async def test_deadline_alerts_operations_once_and_blocks_on_crew_deadline(ts: Skipper) -> None:
    data = await ts.charter(days_ahead=4.25)  # deadline at ~54 h, after both reminders
    ref = data["booking_ref"]
    async with ts.worker():
        handle = await ts.book(data)
        await awaiting_crew(handle)
        await invites_sent(ts.settings, ref)

        await ts.sleep(hours=50)
        before = await wait_status(
            handle, lambda s: reminders_sent(s)["crew-2"] == 2, "reminded twice"
        )
        assert before.blocked_on == contract.BLOCKED_CREW_CONFIRMATIONS
        assert await mail_settles(lambda: ops_alerts(ts.settings, ref), "alerts") == []

        await ts.sleep(hours=6)  # past start - 48 h
        blocked = await wait_status(
            handle, lambda s: s.blocked_on == "crew-deadline", "blocked on the deadline"
        )
        assert blocked.stage == "awaiting-crew"
        assert blocked.blocked_reason and "Sam Harbor" in blocked.blocked_reason
        alerts = await mail_settles(lambda: ops_alerts(ts.settings, ref), "alerts")
        assert len(alerts) == 1, alerts
        assert alerts[0].to == [ts.settings.operations_email]
        assert "crew not confirmed by the deadline" in alerts[0].subject
        assert "Jordan Lee" in alerts[0].body

        await ts.sleep(hours=30)  # still waiting, close to departure: no second alert
        assert len(await mail_settles(lambda: ops_alerts(ts.settings, ref), "alerts")) == 1
        assert (await status(handle)).blocked_on == "crew-deadline"
        assert reminder_counts(ts.settings, ref)["crew-1"] == 2

        for member in MEMBERS:
            await confirm(handle, member)
        result = await result_of(handle)
    assert result.outcome == "completed"
    assert all(a.answer == "accepted" for a in result.confirmations)


async def test_confirmed_booking_is_no_longer_blocked_on_the_deadline(ts: Skipper) -> None:
    """A booking escalated at the deadline and then confirmed must not keep
    BlockedOn=crew-deadline (status query and search attribute) after it completes."""
    data = await ts.charter(days_ahead=4.25)
    async with ts.worker():
        handle = await ts.book(data)
        await awaiting_crew(handle)
        await ts.sleep(hours=56)
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


async def test_decline_alerts_once_and_a_replacement_is_invited_and_awaited(ts: Skipper) -> None:
    data = await ts.charter()
    ref = data["booking_ref"]
    async with ts.worker():
        handle = await ts.book(data)
        await awaiting_crew(handle)
        await invites_sent(ts.settings, ref)

        await confirm(handle, "crew-2", "decline")
        declined = await wait_status(
            handle, lambda s: s.blocked_on == contract.BLOCKED_CREW_DECLINED, "blocked on decline"
        )
        assert answers(declined)["crew-2"] == "declined"
        # more wake-ups while crew-2 stays declined must not alert operations again
        await confirm(handle, "captain-1")
        await confirm(handle, "crew-1")
        await wait_status(handle, lambda s: answers(s)["crew-1"] == "accepted", "crew-1 in")
        alerts = await mail_settles(lambda: ops_alerts(ts.settings, ref), "alerts")
        assert [a.subject for a in alerts] == [f"{ref}: Jordan Lee declined"]
        assert f"charters assign {handle.id} crew-2" in alerts[0].body
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
        await eventually(
            lambda: mails(ts.settings, ref, "Can you crew", to=REPLACEMENT.email),
            what="the replacement's invite",
        )
        invite = mails(ts.settings, ref, "Can you crew", to=REPLACEMENT.email)
        assert len(invite) == 1 and set(invite[0].magic_links()) == {"accept", "decline"}
        waiting = await wait_status(
            handle,
            lambda s: s.blocked_on == contract.BLOCKED_CREW_CONFIRMATIONS,
            "waiting on the replacement",
        )
        assert waiting.stage == "awaiting-crew"
        assert waiting.blocked_reason and "Casey Morgan" in waiting.blocked_reason
        assert waiting.charter and [s.id for s in waiting.charter.crew] == ["crew-1", "crew-9"]

        # a late answer from the replaced member changes nothing
        await confirm(handle, "crew-2")
        await confirm(handle, REPLACEMENT.id)
        result = await result_of(handle)

    assert result.outcome == "completed"
    by_id = {a.crew_id: a for a in result.confirmations}
    assert by_id.get("crew-2") is None or by_id["crew-2"].answer == "replaced"
    assert by_id["crew-9"].answer == "accepted"
    assert {k: a.answer for k, a in by_id.items() if k != "crew-2"} == {
        "captain-1": "accepted",
        "crew-1": "accepted",
        "crew-9": "accepted",
    }
    assert f"invite:1:{REPLACEMENT.id}" in result.crew_email_ids
    assert len(ops_alerts(ts.settings, ref)) == 1
    summary = mails(ts.settings, ref, "Confirmed:")
    assert len(summary) == 1 and summary[0].to == [EMAIL_OF["captain-1"]]
    assert "Casey Morgan" in summary[0].body


async def test_reminders_stay_capped_while_a_member_is_declined(ts: Skipper) -> None:
    """A declined member is never reminded, and must not keep the others' reminder clock at
    zero: after one day each pending member has had one reminder, not one per second."""
    data = await ts.charter(days_ahead=6)
    ref = data["booking_ref"]
    async with ts.worker():
        handle = await ts.book(data)
        try:
            await awaiting_crew(handle)
            await confirm(handle, "crew-2", "decline")
            await wait_status(
                handle, lambda s: s.blocked_on == contract.BLOCKED_CREW_DECLINED, "declined"
            )
            await ts.sleep(hours=24, seconds=5)
            await wait_status(handle, lambda s: reminders_sent(s)["crew-1"] >= 1, "reminded")
            await asyncio.sleep(3)  # real seconds: a 1-second reminder loop would show here
            counts = await mail_settles(
                lambda: reminder_counts(ts.settings, ref), "reminders", quiet=1.0, timeout=4
            )
            assert counts == {"captain-1": 1, "crew-1": 1, "crew-2": 0, "crew-9": 0}
            assert reminders_sent(await status(handle))["crew-1"] == 1
        finally:
            await handle.terminate("test over")


async def test_a_late_replacement_does_not_push_others_past_max_reminders(ts: Skipper) -> None:
    """Crew-2 never answers; after both reminders operations replace them. The others have had
    their max_reminders and get no more; the newcomer is not reminded the moment they are
    invited, but a day later."""
    data = await ts.charter(days_ahead=6)
    ref = data["booking_ref"]
    async with ts.worker():
        handle = await ts.book(data)
        try:
            await awaiting_crew(handle)
            await ts.sleep(hours=49)
            await wait_status(handle, lambda s: reminders_sent(s)["crew-2"] == 2, "reminded x2")
            await handle.signal(
                contract.SIGNAL_ASSIGN_CREW, AssignCrew(replaces="crew-2", member=REPLACEMENT)
            )
            await wait_status(handle, lambda s: REPLACEMENT.id in answers(s), "replaced")
            await eventually(
                lambda: mails(ts.settings, ref, "Can you crew", to=REPLACEMENT.email),
                what="the replacement's invite",
            )
            counts = await mail_settles(
                lambda: reminder_counts(ts.settings, ref), "reminders", quiet=2
            )
            assert counts == {"captain-1": 2, "crew-1": 2, "crew-2": 2, "crew-9": 0}
            await ts.sleep(hours=25)  # the newcomer's own first reminder, a day after the invite
            await wait_status(handle, lambda s: reminders_sent(s)[REPLACEMENT.id] == 1, "reminded")
            counts = await mail_settles(
                lambda: reminder_counts(ts.settings, ref), "reminders", quiet=1
            )
            assert counts == {"captain-1": 2, "crew-1": 2, "crew-2": 2, "crew-9": 1}
        finally:
            await handle.terminate("test over")


async def test_operator_confirms_a_replacement_right_after_assigning(ts: Skipper) -> None:
    """`charters assign` then `charters confirm --by operator:...` for the newcomer, back to
    back: both signals can reach the workflow in one task. The confirmation must not be lost."""
    data = await ts.charter()
    async with ts.worker(cached=False):
        handle = await ts.book(data)
        await awaiting_crew(handle)
    # no worker polls now, so both signals are delivered in the same workflow task
    await handle.signal(
        contract.SIGNAL_ASSIGN_CREW, AssignCrew(replaces="crew-2", member=REPLACEMENT)
    )
    await confirm(handle, REPLACEMENT.id, by="operator:dana")
    async with ts.worker(cached=False):
        try:
            await wait_status(handle, lambda s: REPLACEMENT.id in answers(s), "assigned")
            current = await wait_status(
                handle,
                lambda s: answers(s)[REPLACEMENT.id] == "accepted",
                "the replacement confirmed by dana",
                timeout=3,
            )
            assert {a.crew_id: a.by for a in current.crew}[REPLACEMENT.id] == "operator:dana"
        finally:
            await handle.terminate("test over")


# ---- (d) operator override -------------------------------------------------------------------


async def test_operator_confirms_on_a_members_behalf(ts: Skipper) -> None:
    data = await ts.charter()
    async with ts.worker():
        handle = await ts.book(data)
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


async def test_early_and_duplicate_confirmations(ts: Skipper) -> None:
    """Signals sent before any worker runs land in the workflow's first task, before validation;
    they are kept and applied once the crew is known. Repeats change nothing."""
    data = await ts.charter()
    ref = data["booking_ref"]
    handle = await ts.book(data)
    await confirm(handle, "crew-1")
    await confirm(handle, "crew-1")  # duplicate, still before validation
    await confirm(handle, "crew-2", by="operator:dana")
    await confirm(handle, "nobody")  # unknown member: ignored, not a failure

    async with ts.worker():
        current = await awaiting_crew(handle)
        assert answers(current) == {
            "captain-1": "pending",
            "crew-1": "accepted",
            "crew-2": "accepted",
        }
        assert {a.crew_id: a.by for a in current.crew}["crew-2"] == "operator:dana"
        await invites_sent(ts.settings, ref)

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
    assert len(mails(ts.settings, ref, "Can you crew")) == 3
    assert len(mails(ts.settings, ref, "Confirmed:")) == 1
    history = await handle.fetch_history()
    signals = [
        e for e in history.events if e.HasField("workflow_execution_signaled_event_attributes")
    ]
    assert len(signals) == 8


# ---- scenarios the replay test records (tests/test_replay.py) --------------------------------


async def decline_and_replace_scenario(ts: Skipper) -> WorkflowHandle[Any, BookingResult]:
    """Crew-2 declines, operations assign crew-9, a day passes (one reminder each to crew-1 and
    crew-9), then crew-1 is confirmed by an operator and crew-9 accepts."""
    data = await ts.charter(days_ahead=6)
    async with ts.worker():
        handle = await ts.book(data)
        await awaiting_crew(handle)
        await confirm(handle, "captain-1")
        await confirm(handle, "crew-2", "decline")
        await wait_status(
            handle, lambda s: s.blocked_on == contract.BLOCKED_CREW_DECLINED, "declined"
        )
        await handle.signal(
            contract.SIGNAL_ASSIGN_CREW, AssignCrew(replaces="crew-2", member=REPLACEMENT)
        )
        await wait_status(
            handle, lambda s: s.blocked_on == contract.BLOCKED_CREW_CONFIRMATIONS, "replaced"
        )
        await ts.sleep(hours=25)
        await wait_status(handle, lambda s: reminders_sent(s)[REPLACEMENT.id] == 1, "reminded")
        await confirm(handle, "crew-1", by="operator:dana")
        await confirm(handle, REPLACEMENT.id)
        result = await result_of(handle)
    assert result.outcome == "completed"
    assert {a.crew_id: a.answer for a in result.confirmations} == {
        "captain-1": "accepted",
        "crew-1": "accepted",
        REPLACEMENT.id: "accepted",
    }
    return handle


async def cancel_scenario(ts: Skipper) -> WorkflowHandle[Any, BookingResult]:
    """Invited, one acceptance, a day passes, then the booking is cancelled."""
    data = await ts.charter(days_ahead=6)
    async with ts.worker():
        handle = await ts.book(data)
        await awaiting_crew(handle)
        await confirm(handle, "crew-1")
        await ts.sleep(hours=25)
        await wait_status(handle, lambda s: reminders_sent(s)["crew-2"] == 1, "reminded")
        await handle.signal(contract.SIGNAL_CANCEL_BOOKING, CancelBooking(reason="guest cancelled"))
        result = await result_of(handle)
    assert result.outcome == "cancelled"
    return handle
