"""The interleaving test (issue 18, Deliver 6): every activity the booking schedules up to
confirmation is held in flight by a gate in the fault proxy (faultproxy/gate.py), keyed to one
booking, and then the booking is cancelled by update, cancelled natively, moved to another date,
moved to the other brand, a member replaced, or its worker is killed. After the gate opens, the
emulated systems are counted: nothing left live and each effect and each compensation at most
once after a cancel; after a reschedule, the crew asked again once each and, once they accept,
every system on the new date and the calendar confirmed only for it; after a brand move, the
page live on the new brand's site and a notice on the old one, the guest told once; after a
replacement, the newcomer asked once and named by the SCC event, the page and the summary in
place of the member they replace; each effect exactly once after a kill.

One booking per cell, every cell side by side on the session stack. The kill cells share one
kill: they all wait at their gates, the worker is killed and restarted, the gates open. One point
has no booking in its call (the SCC key check reads the Lambda's configuration), so its gate holds
every booking's check: its cancel cells run first, before any other booking starts, and its kill
cell starts last, once every other booking is past the check.

How each cell's call is held:
- the cells that change the booking hold the request before the service sees it: its outcome is
  decided after the workflow has taken the change, so only a workflow that waits for the call (or
  finds its effect after the call can no longer act) leaves nothing behind, and no answer for the
  old date lands after the new one;
- kill cells let the service act and hold the answer (the effect exists, the killed worker never
  learns of it: the next attempt must find it), except SES's sends, which carry no idempotency
  token: those are held before SES sees them (a send made and never recorded is the ledger's
  documented window, tests/test_crashes.py), and the dead worker's request is dropped.

The table of cell -> what was counted is printed at the end of the run (`pytest -s` or the
terminal summary), and each cell is its own test id, `test_interleaving[<activity>-<mode>]`.
`INTERLEAVING_POINTS=create_scc_event,send_crew_email` runs only those points' cells,
`INTERLEAVING_MODES=reschedule,kill` only those modes'."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

import httpx
import pytest
import uvicorn
from charters_dev import chaos_effects as effects
from charters_dev.faultproxy import FaultProxy, HoldRule
from charters_dev.mailbox import Mail, sent_mail
from charters_dev.ports import free_port
from charters_dev.stack import DevStack
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle

from charters import contract
from charters.actions import act, settled
from charters.brands import Brand
from charters.models import (
    AssignCrew,
    BookingResult,
    CancelBooking,
    MoveBrand,
    Reschedule,
    Verdict,
)
from charters.settings import Settings
from charters.starter.book import validate
from charters.worker.wiring import AwsClients
from tests.conftest import Booker
from tests.support import (
    NEWCOMER,
    booking_data,
    calendar_entries,
    follow_link,
    mail_for,
    new_ref,
    scc_items,
)

CREW = ("alex@sailjada.com", "captain@sailjada.com", "jordan@sailjada.com")
HELD_MEMBER = "alex@sailjada.com"
"""The crew member whose invitation is held at the `send_crew_email` point."""

REACH_BOUND = 120.0
"""How long a booking may take to reach its gate (2 cores, ~30 bookings at once)."""
SEEN_BOUND = 40.0
"""How long the workflow may take to see a cancel while the call is held (a held local activity
delays the next workflow task until the task's heartbeat)."""
CLOSE_BOUND = 90.0
"""The one timing assertion: a cancelled booking is closed this long after its gate opened."""
CONFIRM_BOUND = 150.0
"""After the kill, a booking reaches `confirmed` within this (a lost SES send waits out the
ledger's lease before it is taken over)."""


class Mode(StrEnum):
    UPDATE = "update"  # `charters cancel`: the cancel_booking Workflow Update
    NATIVE = "native"  # the Web UI's cancel: handle.cancel()
    KILL = "kill"  # SIGKILL of the worker, then a new one
    RESCHEDULE = "reschedule"  # `charters reschedule`: the reschedule Workflow Update
    MOVE = "move"  # `charters move-brand` to MOVED_TO: the move_brand Workflow Update
    ASSIGN = "assign"  # `charters assign`: REPLACED's seat to NEWCOMER


MOVED_TO = "sailjada.com"
"""The brand a move cell's booking moves to, from the stack's default (queenofsandiego.com)."""
REPLACED = ("crew-2", "jordan@sailjada.com", "Jordan")


@dataclass(frozen=True)
class Keys:
    """What a booking's calls carry that names it."""

    ref: str
    slug: str
    workflow_id: str
    event_id: str = ""  # the SCC event, once created
    entry_id: str = ""  # the calendar entry, once created


@dataclass(frozen=True)
class Point:
    """An activity and how its external call is recognised at the proxy."""

    activity: str
    target: Literal["calendar", "scc", "aws"]
    method: str
    path: Callable[[Keys], list[str]]
    body: Callable[[Keys], list[str]]
    needs: Literal["", "event_id", "entry_id"] = ""  # known only once the booking is under way
    crew_first: bool = False  # reached once the crew have accepted
    every_booking: bool = False  # the call names no booking: the gate holds every booking's
    kill_phase: Literal["before", "after"] = "after"
    lookup_first: bool = False  # the create looks up first: a kill cell holds its look-ups too

    def rule(self, name: str, keys: Keys, mode: Mode) -> HoldRule:
        """A cancel cell holds the call that decides the effect; a kill cell holds every call of
        the step for that booking, so a retry cannot finish the step before the kill."""
        if mode is not Mode.KILL:  # a cancel or a move
            return HoldRule(
                name=name, method=self.method, path=self.path(keys), body=self.body(keys)
            )
        lookups = self.lookup_first  # GET ?booking_ref=... or ?external_ref=..., then the POST
        return HoldRule(
            name=name,
            method=None if lookups else self.method,
            path=self.path(keys),
            body=[] if lookups else self.body(keys),
            anywhere=self.body(keys) if lookups else [],
            phase=self.kill_phase,
        )


POINTS = [
    Point(
        "create_calendar_entry",
        "calendar",
        "POST",
        lambda k: ["/calendar"],
        lambda k: [k.ref],
        lookup_first=True,
    ),
    Point(
        "check_scc_service_key",
        "aws",
        "GET",
        lambda k: ["/functions/", "/configuration"],
        lambda k: [],
        every_booking=True,
    ),
    Point(
        "create_scc_event",
        "scc",
        "POST",
        lambda k: ["/events"],
        lambda k: [k.ref],
        lookup_first=True,
    ),
    Point(
        "redact_scc_revenue",  # DynamoDB's JSON names the item by its event id
        "aws",
        "POST",
        lambda k: ["/"],
        lambda k: [f'"{k.event_id}"'],
        needs="event_id",
    ),
    Point(
        "publish_guest_page", "aws", "PUT", lambda k: [f"/guest-pages/{k.slug}.html"], lambda k: []
    ),
    Point(
        "invalidate_guest_page",  # the CallerReference is the workflow id and the content hash
        "aws",
        "POST",
        lambda k: ["/invalidation"],
        lambda k: [f"{k.workflow_id}:"],
    ),
    Point(
        "send_crew_email",
        "aws",
        "POST",
        lambda k: ["/v2/email/outbound-emails"],
        lambda k: [f"Can you crew {k.ref}", HELD_MEMBER],
        kill_phase="before",
    ),
    Point(
        "send_captain_summary",
        "aws",
        "POST",
        lambda k: ["/v2/email/outbound-emails"],
        lambda k: [f"Confirmed: {k.ref}"],
        crew_first=True,
        kill_phase="before",
    ),
    Point(
        "update_calendar_entry",  # to confirmed; its PATCH names the entry only
        "calendar",
        "PATCH",
        lambda k: [f"/calendar/{k.entry_id}"],
        lambda k: ['"confirmed"'],
        needs="entry_id",
        crew_first=True,
    ),
]
NOT_HELD = {
    "validate_booking": "a local activity with no external call: nothing on the wire to hold",
}


@dataclass
class Cell:
    point: Point
    mode: Mode
    ref: str = field(default_factory=lambda: new_ref("I"))
    data: dict[str, Any] = field(default_factory=dict)
    keys: Keys | None = None
    handle: WorkflowHandle[Any, BookingResult] | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    notes: list[str] = field(default_factory=list)
    gate: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    row: dict[str, str] = field(default_factory=dict)
    moved_to: datetime | None = None  # a reschedule cell's new start (local time)
    calendar_when_asked: list[str] = field(default_factory=list)  # entry statuses then

    @property
    def name(self) -> str:
        return f"{self.point.activity}-{self.mode}"

    @property
    def hold(self) -> str:
        """The gate's name; the key check's cancel cells share one (it holds every booking)."""
        if not self.point.every_booking:
            return self.name
        return "every-key-check-kill" if self.mode is Mode.KILL else "every-key-check"

    def prepare(self) -> Keys:
        self.data = booking_data(self.ref)
        if self.mode is Mode.RESCHEDULE:  # two days later, in the afternoon
            starts = datetime.fromisoformat(self.data["starts_at"])
            self.moved_to = (starts + timedelta(days=2)).replace(hour=14)
        self.keys = Keys(
            self.ref, validate(self.data).page_slug, contract.workflow_id_for(self.ref)
        )
        return self.keys


CELLS = [(p.activity, m) for p in POINTS for m in Mode]


# ---- the run: every cell side by side -------------------------------------------------------


class Run:
    def __init__(self, stack: DevStack, booker: Booker, aws: AwsClients) -> None:
        self.stack = stack
        self.booker = booker
        self.aws = aws
        self.settings: Settings = booker.settings
        points = os.environ.get("INTERLEAVING_POINTS", "").split(",")
        modes = os.environ.get("INTERLEAVING_MODES", "").split(",")
        self.cells = [
            Cell(p, m)
            for p in POINTS
            for m in Mode
            if (p.activity in points or points == [""]) and (m in modes or modes == [""])
        ]
        self.killed = asyncio.Event()  # the worker was killed and restarted, the gates opened
        self.last_in = asyncio.Event()  # every other booking is past the SCC key check

    # -- the gate ----------------------------------------------------------------------------

    def arm(self, cell: Cell, keys: Keys) -> None:
        self.stack.hold(cell.point.target, cell.point.rule(cell.hold, keys, cell.mode))

    def gate(self, cell: Cell) -> dict[str, Any]:
        return dict(self.stack.holds(cell.point.target).get(cell.hold, {}))

    def open(self, cell: Cell) -> None:
        with contextlib.suppress(Exception):  # opened already (a shared gate)
            self.stack.release(cell.point.target, cell.hold)

    async def arrivals(self, cell: Cell, more_than: int = 0) -> int:
        """Waits until the cell's gate has met more than `more_than` requests."""
        deadline = time.monotonic() + REACH_BOUND
        while time.monotonic() < deadline:
            arrived = int((await asyncio.to_thread(self.gate, cell)).get("arrived", 0))
            if arrived > more_than:
                return arrived
            await asyncio.sleep(0.5)
        raise AssertionError(f"{cell.name}: the call never reached its gate")

    # -- one booking up to its gate --------------------------------------------------------

    async def start(self, cell: Cell) -> None:
        keys = cell.prepare()
        if not cell.point.needs:
            await asyncio.to_thread(self.arm, cell, keys)
        if cell.point.needs == "event_id":
            await self._arm_after_scc_event(cell)
            return
        cell.handle = await self.booker.start(cell.data)

    async def _arm_after_scc_event(self, cell: Cell) -> None:
        """The redaction's call names the SCC event, made by the step before: the SCC create's
        answer is held a moment, the event id read from the table once the event is there (the
        hold counts a request as arrived before SCC has written it) and its gate armed."""
        assert cell.keys is not None
        aux = HoldRule(
            name=f"{cell.name}-scc-first",
            method="POST",
            path=["/events"],
            body=[cell.ref],
            phase="after",
        )
        await asyncio.to_thread(self.stack.hold, "scc", aux)
        cell.handle = await self.booker.start(cell.data)
        try:
            deadline = time.monotonic() + REACH_BOUND
            items: list[dict[str, Any]] = []
            while not items:
                if time.monotonic() > deadline:
                    raise AssertionError(f"{cell.name}: SCC event never created")
                await asyncio.sleep(0.5)
                items = await asyncio.to_thread(scc_items, self.aws, self.settings, cell.ref)
            cell.keys = replace(cell.keys, event_id=str(items[0]["event_id"]))
            await asyncio.to_thread(self.arm, cell, cell.keys)
        finally:
            await asyncio.to_thread(self.stack.release, "scc", aux.name)

    async def reach_gate(self, cell: Cell) -> None:
        await self.start(cell)
        if cell.point.crew_first:
            invites = await self.invitations(cell, len(CREW))
            if cell.point.needs == "entry_id":
                entries = await asyncio.to_thread(calendar_entries, self.settings, cell.ref)
                entry = entries[0]
                assert cell.keys is not None
                cell.keys = replace(cell.keys, entry_id=str(entry["entry_id"]))
                await asyncio.to_thread(self.arm, cell, cell.keys)
            await self.accept(invites)
        await self.arrivals(cell)
        cell.arrived.set()

    async def invitations(
        self, cell: Cell, count: int, which: Callable[[Mail], bool] = lambda mail: True
    ) -> dict[str, str]:
        """recipient -> accept link of their invitation, once `count` members have one (of the
        emails `which` keeps)."""
        deadline = time.monotonic() + CONFIRM_BOUND
        while time.monotonic() < deadline:
            mails = await asyncio.to_thread(mail_for, self.settings, cell.ref)
            links = {
                m.to[0]: m.magic_links()["accept"] for m in mails if m.magic_links() and which(m)
            }
            if len(links) >= count:
                return links
            await asyncio.sleep(1)
        raise AssertionError(f"{cell.name}: fewer than {count} members asked")

    async def accept(self, links: dict[str, str]) -> None:
        for link in links.values():
            await asyncio.to_thread(follow_link, link, "accept")

    # -- the modes ----------------------------------------------------------------------------

    async def change(self, cell: Cell) -> None:
        """Cancels, reschedules or moves while the call is held; returns once the workflow has
        taken the change (or SEEN_BOUND passed: the note says so)."""
        assert cell.handle is not None
        if cell.mode is Mode.NATIVE:
            await cell.handle.cancel()
            seen = await self.seen_natively(cell.handle)
            cell.notes.append("cancel seen" if seen else "cancel not yet seen")
            return
        update, arg, what = {
            Mode.UPDATE: (
                contract.UPDATE_CANCEL_BOOKING,
                CancelBooking(reason="interleaving test"),
                "cancel",
            ),
            Mode.RESCHEDULE: (
                contract.UPDATE_RESCHEDULE,
                Reschedule(starts_at=cell.moved_to or datetime.now()),
                "reschedule",
            ),
            Mode.MOVE: (
                contract.UPDATE_MOVE_BRAND,
                MoveBrand(brand=MOVED_TO, by="interleaving test"),
                "move",
            ),
            Mode.ASSIGN: (
                contract.UPDATE_ASSIGN_CREW,
                AssignCrew(replaces=REPLACED[0], member=NEWCOMER),
                "assign",
            ),
        }[cell.mode]
        verdict = asyncio.ensure_future(act(self.booker.client, cell.handle.id, update, arg))
        done, _ = await asyncio.wait({verdict}, timeout=SEEN_BOUND)
        cell.notes.append(describe_verdict(verdict, what) if done else "no verdict yet")

    async def seen_natively(self, handle: WorkflowHandle[Any, Any]) -> bool:
        """A workflow task completed after the cancel request, or the workflow closed."""
        deadline = time.monotonic() + SEEN_BOUND
        while time.monotonic() < deadline:
            requested = False
            async for event in handle.fetch_history_events():
                kind = event.event_type
                if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED:
                    requested = True
                elif requested and kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
                    return True
            if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
                return True
            await asyncio.sleep(1)
        return False

    async def run_change_cell(self, cell: Cell) -> None:
        await self.reach_gate(cell)
        await self.change(cell)
        await asyncio.to_thread(self.open, cell)
        await self.after_change(cell)

    async def after_change(self, cell: Cell) -> None:
        """A cancelled booking closes; one changed otherwise is confirmed by the crew it asks
        (again, for a new date; the newcomer, for a seat that changed hands) and goes on."""
        if cell.mode in (Mode.UPDATE, Mode.NATIVE):
            await self.wait_closed(cell)
            return
        await self.accept(await self.to_accept(cell))
        assert cell.handle is not None
        with contextlib.suppress(TimeoutError):
            await settled(cell.handle, CONFIRM_BOUND, poll=1.0)
        if cell.mode is Mode.MOVE:  # the move may still be going on once the crew confirmed
            deadline = time.monotonic() + CONFIRM_BOUND
            while time.monotonic() < deadline:
                if (await self.booker.status(cell.handle.id)).steps.get("brand_move") == "done":
                    return
                await asyncio.sleep(1)

    async def to_accept(self, cell: Cell) -> dict[str, str]:
        """The links the crew press after the change: who is asked, and by which email."""
        if cell.mode is Mode.RESCHEDULE:
            assert cell.moved_to is not None
            new_date = f"on {cell.moved_to.date().isoformat()}?"
            asked = await self.invitations(cell, len(CREW), lambda m: m.subject.endswith(new_date))
            cell.calendar_when_asked = await asyncio.to_thread(
                lambda: [str(e.get("status")) for e in calendar_entries(self.settings, cell.ref)]
            )
            return asked
        if cell.mode is Mode.ASSIGN:
            seated = {NEWCOMER.email}
            if not cell.point.crew_first:
                seated |= set(CREW) - {REPLACED[1]}
            return await self.invitations(cell, len(seated), lambda m: m.to[0] in seated)
        return {} if cell.point.crew_first else await self.invitations(cell, len(CREW))

    async def wait_closed(self, cell: Cell) -> None:
        assert cell.handle is not None
        deadline = time.monotonic() + CLOSE_BOUND
        while time.monotonic() < deadline:
            described = await cell.handle.describe()
            if described.status != WorkflowExecutionStatus.RUNNING:
                return
            await asyncio.sleep(1)

    async def run_kill_cell(self, cell: Cell) -> None:
        if cell.point.every_booking:
            await self.last_in.wait()
        await self.reach_gate(cell)
        await self.killed.wait()
        if not cell.point.crew_first:
            await self.accept(await self.invitations(cell, len(CREW)))
        assert cell.handle is not None
        with contextlib.suppress(TimeoutError):
            await settled(cell.handle, CONFIRM_BOUND, poll=1.0)

    async def kill_once(self, kill_cells: list[Cell], others: list[asyncio.Task[None]]) -> None:
        """When every kill cell waits at its gate and the other cells are done (or have had
        their bound): the key-check kill cell joins last, then one kill, a new worker, and the
        gates open."""

        async def arrived(cells: list[Cell]) -> None:
            if cells:
                waits = [asyncio.ensure_future(c.arrived.wait()) for c in cells]
                await asyncio.wait(waits, timeout=REACH_BOUND)

        await arrived([c for c in kill_cells if not c.point.every_booking])
        if others:
            await asyncio.wait(others, timeout=CLOSE_BOUND + SEEN_BOUND)
        self.last_in.set()
        await arrived([c for c in kill_cells if c.point.every_booking])
        for cell in kill_cells:
            gate = await asyncio.to_thread(self.gate, cell)
            cell.notes.append(
                f"in flight at the kill: {gate.get('waiting', 0)} held"
                if cell.arrived.is_set()
                else "not at its gate at the kill"
            )
        await asyncio.to_thread(self.stack.kill_worker)
        await asyncio.to_thread(self.stack.start_worker)
        for cell in kill_cells:
            await asyncio.to_thread(self.open, cell)
        self.killed.set()

    async def key_check_cancel_cells(self) -> list[asyncio.Task[None]]:
        """First, before any other booking: the key check's cancel cells, one at a time into
        their shared gate (each seen to arrive), both cancels, and the gate opens."""
        cells = [c for c in self.cells if c.point.every_booking and c.mode is not Mode.KILL]
        if not cells:
            return []
        await asyncio.to_thread(self.arm, cells[0], cells[0].prepare())
        try:
            arrived = 0
            for cell in cells:
                cell.prepare()
                cell.handle = await self.booker.start(cell.data)
                arrived = await self.arrivals(cell, more_than=arrived)
                cell.arrived.set()
            await asyncio.gather(*(self.change(c) for c in cells))
        except AssertionError as exc:
            for cell in cells:
                cell.notes.append(str(exc))
        finally:
            await asyncio.to_thread(self.open, cells[0])
        return [
            asyncio.ensure_future(self.guard(c, self.after_change(c))) for c in cells if c.handle
        ]

    async def run(self) -> None:
        first = await self.key_check_cancel_cells()
        changes = [
            asyncio.ensure_future(self.guard(c, self.run_change_cell(c)))
            for c in self.cells
            if c.mode is not Mode.KILL and not c.point.every_booking
        ]
        kill_cells = [c for c in self.cells if c.mode is Mode.KILL]
        kills = [asyncio.ensure_future(self.guard(c, self.run_kill_cell(c))) for c in kill_cells]
        if kill_cells:
            await self.kill_once(kill_cells, [*first, *changes])
        await asyncio.gather(*first, *changes, *kills)

    async def guard(self, cell: Cell, work: Any) -> None:
        """A cell that cannot go on is noted; the others carry on."""
        try:
            await work
        except Exception as exc:  # noqa: BLE001 - reported in the cell's verdict
            cell.notes.append(f"{type(exc).__name__}: {exc}"[:200])
            cell.arrived.set()
        finally:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.open, cell)


def describe_verdict(task: asyncio.Future[Verdict], what: str) -> str:
    if task.exception() is not None:
        return f"{what} update raised {type(task.exception()).__name__}"
    verdict = task.result()
    return f"{what} recorded" if verdict.recorded else f"{what} refused ({verdict.code})"


# ---- counting in the emulated systems -------------------------------------------------------


@dataclass
class Counted:
    status: str
    outcome: str | None
    stage: str
    blocked_on: str | None
    calendar: list[str]  # each entry's status
    calendar_cancels: int  # PATCHes to cancelled, over every entry
    calendar_changes: list[list[str]]  # each entry's status changes, in order
    calendar_when: list[str]  # each entry's "date start"
    scc: list[str]  # each SCC item's status
    scc_dates: list[str]  # each SCC item's date
    page: str  # none | cancelled | moved | live
    page_body: str
    mail: Counter[tuple[str, str]]  # (kind, recipient) -> messages
    dated: Counter[tuple[str, str, str]]  # (kind, recipient, the date it names) -> messages
    invalidations: int  # distinct CallerReferences
    unanswered: set[str]  # recipients of an invitation claimed in the ledger, its send unanswered
    moved: Moved | None = None  # a move cell's: the booking on its new brand
    scc_crew: list[list[str]] = field(default_factory=list)  # each SCC item's crew ids
    summaries_naming: int = 0  # captain's summaries that list the newcomer
    takeovers: dict[str, int] = field(default_factory=dict)  # ledger key -> claims, if over one
    summary_ids: list[str] = field(default_factory=list)  # SES message ids of the summaries

    def sent(self, kind: str) -> Counter[str]:
        return Counter({to: n for (k, to), n in self.mail.items() if k == kind})


@dataclass
class Moved:
    brand: str | None  # the Brand search attribute
    page: str  # on the new brand's site: none | cancelled | moved | live
    invalidations: int  # distinct CallerReferences on the new brand's distribution
    guest_told: int  # emails to the guest with the page's new address


def page_kind(body: str | None) -> str:
    if body is None:
        return "none"
    if "has been cancelled" in body:
        return "cancelled"
    return "moved" if "has moved" in body else "live"


def brand_invalidations(aws: AwsClients, brand: Brand, slug: str) -> int:
    """Distinct CallerReferences of the invalidations of the page on the brand's distribution."""
    pages = aws.cloudfront.get_paginator("list_invalidations").paginate(
        DistributionId=brand.distribution_id
    )
    references = set()
    for item in (i for page in pages for i in page["InvalidationList"].get("Items", []) or []):
        got = aws.cloudfront.get_invalidation(DistributionId=brand.distribution_id, Id=item["Id"])
        batch = got["Invalidation"]["InvalidationBatch"]
        if set(batch["Paths"].get("Items", [])) & set(brand.invalidation_paths(slug)):
            references.add(batch["CallerReference"])
    return len(references)


async def count_moved(run: Run, aws: AwsClients, cell: Cell, mail: list[Mail]) -> Moved:
    brand = run.settings.brand_book().get(MOVED_TO)
    slug = cell.keys.slug if cell.keys else ""
    url = brand.page_url(slug)

    def body() -> str | None:
        try:
            answer = aws.s3.get_object(Bucket=brand.bucket, Key=brand.page_key(slug))
        except aws.s3.exceptions.NoSuchKey:
            return None
        return str(answer["Body"].read().decode())

    described = await cell.handle.describe() if cell.handle else None
    return Moved(
        brand=described.typed_search_attributes.get(contract.SA_BRAND) if described else None,
        page=page_kind(await asyncio.to_thread(body)),
        invalidations=await asyncio.to_thread(brand_invalidations, aws, brand, slug),
        guest_told=sum(url in m.body and "new address" in m.subject for m in mail),
    )


async def count(run: Run, aws: AwsClients) -> dict[str, Counted]:
    settings = run.settings
    refs = {c.ref for c in run.cells}
    entries = await asyncio.to_thread(effects.calendar_entries, settings)
    items = await asyncio.to_thread(effects.scc_items, aws, settings)
    mails = await asyncio.to_thread(effects.mail_by_ref, settings, refs)
    every_mail = await asyncio.to_thread(sent_mail, settings.aws_endpoint_url or "")
    dated = dated_mail(every_mail)
    ids = {c.handle.id for c in run.cells if c.handle}
    takeovers = await asyncio.to_thread(effects.ledger_takeovers, aws, settings, ids)
    slugs = {c.keys.slug for c in run.cells if c.keys}
    invalidated = await asyncio.to_thread(effects.invalidations, aws, settings, slugs)
    counted = {}
    for cell in run.cells:
        status, outcome, stage, blocked = await workflow_state(run, cell)
        slug = cell.keys.slug if cell.keys else ""
        body = await asyncio.to_thread(effects.page_body, aws, settings, slug) if slug else None
        booked = entries.get(cell.ref, [])
        counted[cell.name] = Counted(
            status=status,
            outcome=outcome,
            stage=stage,
            blocked_on=blocked,
            calendar=[str(e.get("status")) for e in booked],
            calendar_cancels=sum(
                change.get("status") == "cancelled"
                for e in booked
                for change in e.get("history", [])
            ),
            calendar_changes=[
                [str(change["status"]) for change in e.get("history", []) if "status" in change]
                for e in booked
            ],
            calendar_when=[f"{e.get('date')} {e.get('start')}" for e in booked],
            scc=[str(i.get("status")) for i in items.get(cell.ref, [])],
            scc_dates=[str(i.get("date")) for i in items.get(cell.ref, [])],
            scc_crew=[[str(c) for c in i.get("crew", [])] for i in items.get(cell.ref, [])],
            summaries_naming=sum(
                m.subject.startswith(f"Confirmed: {cell.ref} ") and NEWCOMER.name in m.body
                for m in every_mail
            ),
            takeovers={
                key: n
                for key, n in takeovers.items()
                if cell.handle and f":{cell.handle.id}:" in key
            },
            summary_ids=[
                m.id for m in every_mail if m.subject.startswith(f"Confirmed: {cell.ref} ")
            ],
            page=page_kind(body),
            page_body=body or "",
            mail=mails.get(cell.ref, Counter()),
            dated=dated.get(cell.ref, Counter()),
            invalidations=len(set(invalidated.get(slug, []))),
            unanswered=await asyncio.to_thread(unanswered_invitations, aws, settings, cell),
            moved=await count_moved(run, aws, cell, every_mail) if cell.mode is Mode.MOVE else None,
        )
    return counted


SUBJECT_KINDS = {"Can": "invite", "Rescheduled:": "rescheduled", "Confirmed:": "captain-summary"}


def dated_mail(every_mail: list[Mail]) -> dict[str, Counter[tuple[str, str, str]]]:
    """ref -> (kind, recipient, date) of the invitations, the notices of a new date and the
    captain's summaries: each subject names the booking and the date ("... REF on DATE")."""
    found: dict[str, Counter[tuple[str, str, str]]] = {}
    for mail in every_mail:
        words = mail.subject.rstrip("?").split()
        kind = SUBJECT_KINDS.get(words[0]) if words else None
        if kind is None or len(words) < 3 or words[-2] != "on":
            continue
        for to in mail.to:
            found.setdefault(words[-3], Counter())[(kind, to, words[-1])] += 1
    return found


def unanswered_invitations(aws: AwsClients, settings: Settings, cell: Cell) -> set[str]:
    if cell.handle is None:
        return set()
    keys = effects.unanswered_claims(aws, settings, cell.handle.id)
    return {
        member.email
        for _role, member in validate(cell.data).members
        if any(
            key.startswith(f"email:{cell.handle.id}:invite:") and key.split(":")[-1] == member.id
            for key in keys
        )
    }


async def workflow_state(run: Run, cell: Cell) -> tuple[str, str | None, str, str | None]:
    if cell.handle is None:
        return "NOT STARTED", None, "", None
    described = await cell.handle.describe()
    status = described.status.name if described.status else "?"
    try:
        result = await cell.handle.query(contract.QUERY_RESULT, result_type=BookingResult)
        current = await run.booker.status(cell.handle.id)
    except Exception:  # noqa: BLE001 - a workflow that cannot answer is reported as such
        return status, None, "?", None
    return status, result.outcome, current.stage, current.blocked_on


# ---- the checks -----------------------------------------------------------------------------


def check_cancelled(cell: Cell, c: Counted) -> list[str]:
    """After a cancel: closed, nothing left live, each effect and compensation at most once,
    every member who was invited told once, and nobody else but a member whose invitation's send
    went unanswered (the product cannot know it was not delivered)."""
    problems = []
    wanted = "COMPLETED" if cell.mode is Mode.UPDATE else "CANCELED"
    if c.status != wanted or c.outcome != "cancelled":
        problems.append(
            f"workflow {c.status} (stage {c.stage}, outcome {c.outcome}, blocked on "
            f"{c.blocked_on}) {CLOSE_BOUND:g} s after the gate opened; wanted {wanted}, cancelled"
        )
    if len(c.calendar) > 1 or any(s != "cancelled" for s in c.calendar):
        problems.append(f"calendar entries {c.calendar}: wanted at most one, cancelled")
    if c.calendar_cancels > 1:
        problems.append(f"the calendar entry was cancelled {c.calendar_cancels} times")
    if len(c.scc) > 1 or any(s != "cancelled" for s in c.scc):
        problems.append(f"SCC events {c.scc}: wanted at most one, cancelled")
    if c.page == "live":
        problems.append("the guest page is the live page, not the cancellation notice")
    invited, told = c.sent("invite"), c.sent("cancelled")
    if any(n > 1 for n in invited.values()):
        problems.append(
            f"invitations sent twice: {dict(invited)} (ledger claims taken over {c.takeovers})"
        )
    # A member whose invitation's send went unanswered (SES may have taken it) is told too.
    unanswered_told = {to: n for to, n in told.items() if to in c.unanswered and to not in invited}
    if told - Counter(unanswered_told) != Counter(dict.fromkeys(invited, 1)) or any(
        n > 1 for n in unanswered_told.values()
    ):
        problems.append(
            f"invited {sorted(invited)} (unanswered {sorted(c.unanswered)}), told of the "
            f"cancel {dict(told)}"
        )
    if sum(c.sent("captain-summary").values()) > 1:
        # The evidence: a claim taken over (the product sent again) or one claim (the stack).
        problems.append(
            f"captain summary sent more than once (messages {c.summary_ids}, ledger claims "
            f"taken over {c.takeovers})"
        )
    if c.invalidations > 2:
        problems.append(f"{c.invalidations} invalidations: wanted publish + cancellation at most")
    return problems


def confirmed_once(c: Counted) -> list[str]:
    """The booking went on to confirmed, with one calendar entry, confirmed."""
    problems = []
    if c.status != "RUNNING" or c.stage != "confirmed":
        problems.append(
            f"workflow {c.status}, stage {c.stage} (blocked on {c.blocked_on}): wanted confirmed"
        )
    if c.calendar != ["confirmed"]:
        problems.append(f"calendar entries {c.calendar}: wanted exactly one, confirmed")
    return problems


def check_carried_on(cell: Cell, c: Counted) -> list[str]:
    """After a kill: the booking went on to confirmed with each effect exactly once."""
    problems = confirmed_once(c)
    if c.scc != ["scheduled"]:
        problems.append(f"SCC events {c.scc}: wanted exactly one, scheduled")
    if c.page != "live":
        problems.append(f"guest page: {c.page}")
    if c.sent("invite") != Counter(dict.fromkeys(CREW, 1)):
        problems.append(f"invitations {dict(c.sent('invite'))}: wanted one per member")
    if c.sent("captain-summary") != Counter({"captain@sailjada.com": 1}):
        problems.append(f"captain summaries {dict(c.sent('captain-summary'))}: wanted one")
    if c.sent("cancelled"):
        problems.append(f"cancellation emails {dict(c.sent('cancelled'))}")
    if c.invalidations != 1:
        problems.append(f"{c.invalidations} invalidations: wanted one")
    return problems


def check_moved(cell: Cell, c: Counted) -> list[str]:
    """After a reschedule: each member asked for the new date once ("rescheduled" if they had
    been invited for the old one, a plain invitation if not, either if its send began and went
    unanswered), and once they accepted, confirmed
    with every system on the new date; the calendar tentative while they were asked and
    confirmed once after (no confirmation of the old date landing late); a captain's summary
    for the new date once (and for the old one at most once, if it was on its way)."""
    assert cell.moved_to is not None
    new_date, new_time = cell.moved_to.date().isoformat(), cell.moved_to.strftime("%H:%M")
    old_date = cell.data["starts_at"][:10]
    problems = []
    if c.status != "RUNNING" or c.stage != "confirmed":
        problems.append(
            f"workflow {c.status}, stage {c.stage} (blocked on {c.blocked_on}): wanted confirmed"
        )
    if c.calendar != ["confirmed"] or c.calendar_when != [f"{new_date} {new_time}"]:
        problems.append(
            f"calendar entries {c.calendar} at {c.calendar_when}: wanted one, confirmed, "
            f"at {new_date} {new_time}"
        )
    if cell.calendar_when_asked != ["tentative"]:
        problems.append(f"calendar {cell.calendar_when_asked} while the crew were asked again")
    if any(changes[-2:] != ["tentative", "confirmed"] for changes in c.calendar_changes):
        problems.append(f"calendar status changes {c.calendar_changes}: wanted tentative last")
    if len(c.scc) != 1 or c.scc[0] == "cancelled" or not c.scc_dates[0].startswith(new_date):
        problems.append(f"SCC events {c.scc} on {c.scc_dates}: wanted one, live, on {new_date}")
    if c.page != "live" or cell.moved_to.strftime("%-I:%M %p") not in c.page_body:
        problems.append(f"guest page {c.page}, not showing the new time")
    for to in CREW:
        invited = c.dated[("invite", to, old_date)]
        wanted = "rescheduled" if invited else "invite"
        # an old-date invitation whose send began but never answered (the held one, dropped):
        # the product cannot know it did not go, so "rescheduled" is right for it too
        may_have = to in c.unanswered and not invited
        asked = {kind: c.dated[(kind, to, new_date)] for kind in ("invite", "rescheduled")}
        allowed = [{"invite": 0, "rescheduled": 0, kind: 1} for kind in ("invite", "rescheduled")]
        if invited > 1 or asked not in (
            allowed if may_have else [allowed[wanted == "rescheduled"]]
        ):
            problems.append(
                f"{to}: invited for {old_date} {invited}x, then asked for {new_date} {asked}; "
                f"wanted one {wanted}"
            )
    summaries = {d: n for (kind, _, d), n in c.dated.items() if kind == "captain-summary"}
    if summaries.get(new_date) != 1 or summaries.get(old_date, 0) > 1:
        problems.append(f"captain summaries {summaries}: wanted one for {new_date}")
    if c.sent("cancelled"):
        problems.append(f"cancellation emails {dict(c.sent('cancelled'))}")
    if c.invalidations > 2:
        problems.append(f"{c.invalidations} invalidations: wanted the first page and the move's")
    return problems


def check_moved_brand(cell: Cell, c: Counted) -> list[str]:
    """After a brand move: confirmed with every effect once, the page live on the new brand's
    site and the old page a notice pointing to it, both distributions invalidated, the guest
    told of the new address once, and the Brand search attribute on the new brand."""
    problems = check_carried_on(cell, replace(c, page="live", invalidations=1))
    moved = c.moved
    assert moved is not None
    if c.page != "moved":
        problems.append(f"the old brand's page is {c.page}, not the notice of the move")
    if moved.page != "live":
        problems.append(f"the new brand's page is {moved.page}")
    if c.invalidations != 2 or moved.invalidations != 1:
        problems.append(
            f"invalidations {c.invalidations} on the old site (wanted the page and the notice), "
            f"{moved.invalidations} on the new (wanted one)"
        )
    if moved.guest_told != 1:
        problems.append(f"the guest was told of the new address {moved.guest_told} times")
    if moved.brand != MOVED_TO:
        problems.append(f"Brand search attribute {moved.brand}")
    return problems


def check_replaced(cell: Cell, c: Counted) -> list[str]:
    """After a replacement: confirmed with the newcomer, who was asked once; the member they
    replace asked at most once (only if that went out before), told once that they are off the
    crew if they were asked, never told of a cancel; the SCC event, the guest page and the
    captain's summary name the newcomer and not them."""
    problems = confirmed_once(c)
    crew = ["crew-1", NEWCOMER.id]  # the newcomer in the seat they took
    if c.scc != ["scheduled"] or c.scc_crew != [crew]:
        problems.append(f"SCC events {c.scc} with crew {c.scc_crew}: wanted one naming {crew}")
    newcomer_shown = NEWCOMER.name.split()[0] in c.page_body
    if c.page != "live" or not newcomer_shown or REPLACED[2] in c.page_body:
        problems.append(
            f"guest page {c.page}: not naming {NEWCOMER.name} in place of {REPLACED[2]}"
        )
    invited = c.sent("invite")
    seated = set(CREW) - {REPLACED[1]} | {NEWCOMER.email}
    if {to: invited[to] for to in seated} != dict.fromkeys(seated, 1) or invited[REPLACED[1]] > 1:
        problems.append(f"invitations {dict(invited)}: wanted one per member seated")
    if c.sent("cancelled"):
        problems.append(f"cancellation emails {dict(c.sent('cancelled'))}")
    told_off = c.sent("released")
    if told_off != Counter({REPLACED[1]: 1} if invited[REPLACED[1]] else {}):
        problems.append(f"told they are off the crew: {dict(told_off)}")
    if c.summaries_naming != 1:
        problems.append(f"{c.summaries_naming} captain's summaries name {NEWCOMER.name}")
    if c.invalidations > 2:
        problems.append(
            f"{c.invalidations} invalidations: wanted the first page and the new crew's"
        )
    return problems


CHECKS = {
    Mode.UPDATE: check_cancelled,
    Mode.NATIVE: check_cancelled,
    Mode.KILL: check_carried_on,
    Mode.RESCHEDULE: check_moved,
    Mode.MOVE: check_moved_brand,
    Mode.ASSIGN: check_replaced,
}


def describe_moved(moved: Moved | None) -> str:
    if moved is None:
        return "-"
    return f"{moved.brand} {moved.page} inval {moved.invalidations} told {moved.guest_told}"


def table_row(cell: Cell, c: Counted) -> dict[str, str]:
    gate = cell.gate
    return {
        "cell": cell.name,
        "gate a/f/d": "/".join(str(gate.get(k, 0)) for k in ("arrived", "forwarded", "dropped")),
        "workflow": f"{c.status} {c.stage}" + (f" [{c.blocked_on}]" if c.blocked_on else ""),
        "calendar": ",".join(c.calendar) or "-",
        "scc": ",".join(c.scc) or "-",
        "page": c.page,
        "invites": str(sum(c.sent("invite").values())),
        "told": str(sum(c.sent("cancelled").values())),
        "new date": str(sum(c.sent("rescheduled").values())),
        "off": str(sum(c.sent("released").values())),
        "summary": str(sum(c.sent("captain-summary").values())),
        "inval": str(c.invalidations),
        "new brand": describe_moved(c.moved),
        "verdict": "ok" if not cell.problems else "FAIL",
        "notes": "; ".join(cell.notes),
    }


def format_table(rows: list[dict[str, str]]) -> str:
    columns = list(rows[0])
    widths = {k: max(len(k), *(len(r[k]) for r in rows)) for k in columns[:-1]}
    lines = [" | ".join(k.ljust(widths.get(k, 0)) for k in columns)]
    lines.append("-" * len(lines[0]))
    lines += [" | ".join(r[k].ljust(widths.get(k, 0)) for k in columns) for r in rows]
    return "\n".join(lines)


# ---- the tests ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def interleaving(
    stack: DevStack, booker: Booker, aws: AwsClients, request: pytest.FixtureRequest
) -> AsyncIterator[dict[str, Cell]]:
    run = Run(stack, booker, aws)
    started = time.monotonic()
    try:
        await run.run()
        for cell in run.cells:
            cell.gate = await asyncio.to_thread(run.gate, cell)
        counted = await count(run, aws)
        for cell in run.cells:
            c = counted[cell.name]
            cell.problems = CHECKS[cell.mode](cell, c)
            cell.row = table_row(cell, c)
        report = format_table([c.row for c in run.cells])
        took = f"interleaving: {len(run.cells)} cells in {time.monotonic() - started:.0f} s"
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line("")
            reporter.write_line(took)
            reporter.write_line(report)
        print(took, report, sep="\n")
        yield {c.name: c for c in run.cells}
    finally:
        for cell in run.cells:
            await asyncio.to_thread(run.open, cell)
            if cell.handle is not None and cell.mode in (Mode.UPDATE, Mode.NATIVE):
                with contextlib.suppress(Exception):  # a booking the cancel left running
                    await cell.handle.terminate("interleaving test: left running")


@pytest.mark.timeout(480)
@pytest.mark.parametrize(("activity", "mode"), CELLS, ids=[f"{a}-{m}" for a, m in CELLS])
async def test_interleaving(activity: str, mode: Mode, interleaving: dict[str, Cell]) -> None:
    cell = interleaving.get(f"{activity}-{mode}")
    if cell is None:
        pytest.skip("not among INTERLEAVING_POINTS and INTERLEAVING_MODES")
    assert not cell.problems, f"{cell.name}: " + "; ".join(cell.problems + cell.notes)


@pytest.mark.parametrize("activity", sorted(NOT_HELD))
def test_points_not_held(activity: str) -> None:
    pytest.skip(f"{activity}: {NOT_HELD[activity]}")


# ---- the gate itself, without the stack -----------------------------------------------------


async def test_gate_holds_one_booking_and_drops_a_request_whose_client_left() -> None:
    """A hold keeps the matching request (and only it) until released; a held request whose
    client gave up is never forwarded."""
    seen: list[bytes] = []

    async def echo(request: Request) -> JSONResponse:
        seen.append(await request.body())
        return JSONResponse({"ok": True})

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(Starlette(routes=[Route("/x", echo, methods=["POST"])]), port=port)
    )
    serving = asyncio.ensure_future(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.05)
        async with FaultProxy(0, f"http://127.0.0.1:{port}") as proxy:
            base = f"http://127.0.0.1:{proxy.port}"
            async with httpx.AsyncClient(timeout=10) as http:
                rule = HoldRule(name="b1", method="POST", body=["BOOKING-1"])
                (
                    await http.put(f"{base}/__faults/holds", json=rule.model_dump())
                ).raise_for_status()
                held = asyncio.ensure_future(http.post(f"{base}/x", content=b"BOOKING-1 a"))
                other = await http.post(f"{base}/x", content=b"BOOKING-2")
                assert other.status_code == 200 and seen == [b"BOOKING-2"]
                async with httpx.AsyncClient(timeout=0.5) as impatient:
                    with pytest.raises(httpx.ReadTimeout):
                        await impatient.post(f"{base}/x", content=b"BOOKING-1 b")
                await asyncio.sleep(0.2)
                (await http.delete(f"{base}/__faults/holds/b1")).raise_for_status()
                assert (await held).status_code == 200
                status = (await http.get(f"{base}/__faults/holds")).json()["b1"]
        assert seen == [b"BOOKING-2", b"BOOKING-1 a"]
        assert (status["arrived"], status["forwarded"], status["dropped"]) == (2, 1, 1)
    finally:
        server.should_exit = True
        await serving
