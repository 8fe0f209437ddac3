"""`charters chaos` / `make chaos`: many bookings through a faulty network and a worker that is
killed with SIGKILL at random moments; then every effect is counted in the emulated systems.

What it does, in order:

1. Starts its own `DevStack` on free ports in a temporary state dir (the CLI), or uses the stack
   it is given (the short test reuses the session stack: every count below is filtered by the
   booking references of this run, so other bookings in the same stack do not disturb it).
2. Sets faults on all three proxy targets (aws, calendar, scc): with probability `fault_rate` a
   request gets a 500, a 503, throttling, a connection reset (all before the request reaches the
   upstream), or a slow answer (forwarded, the answer held back `slow_ms`). Never `after=1` on
   aws: SES has no idempotency token and a lost answer after a send is the one documented
   duplicate window, so injecting it would only measure the documented window.
3. Starts `bookings` bookings, at most `concurrency` in flight. Each booking's crew is
   confirmed by one `crew_confirmation` signal per member once its `status` query says
   `awaiting-crew`.
4. Meanwhile kills the worker with SIGKILL `kills` times, at random points of the run (after a
   random share of the bookings has finished, plus a random delay), and restarts it after
   0.5-2 s.
5. Turns the faults off, waits for every result (generous timeout), then reads the ledger FROM
   THE EMULATED SYSTEMS, per booking: calendar entries (the calendar stand-in's JSON file), SCC
   items (DynamoDB scan), the guest page object (S3), CloudFront invalidations of the slug
   (list + get), SES messages per kind and recipient (moto's sent mail), and from Temporal the
   signals each history received and the activity retries (`attempt` of ActivityTaskStarted).

A duplicate is any effect counted more than once where once is expected (and a signal more than
was sent); a booking is lost when it was started but has no workflow or no result. Missing
effects of a completed booking are reported too. Exit status is non-zero on any of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import secrets
import shutil
import string
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError
from rich.console import Console
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from charters import contract
from charters.actions import settled
from charters.models import Booking, BookingResult, BookingStatus, CrewConfirmation
from charters.settings import Settings
from charters.starter.book import start_booking, validate
from charters.temporal_client import connect
from charters.worker.wiring import AwsClients, aws_clients
from charters_dev.isolated import (
    QUICK_RETRIES,
    isolated_settings,
    sample_charter,
    without_charters_env,
)
from charters_dev.mailbox import sent_mail
from charters_dev.stack import DevStack

PROXY_TARGETS = ("aws", "calendar", "scc")
FAULT_KINDS = "500|503|throttle|reset|slow"
FINAL_STAGES = ("confirmed", "cancelled", "failed")


@dataclass
class ChaosConfig:
    bookings: int = 100
    kills: int = 5
    fault_rate: float = 0.1
    seed: int = 1
    concurrency: int = 20
    slow_ms: float = 300.0
    down_seconds: tuple[float, float] = (0.5, 2.0)
    # While faults are on, a booking gets this long before its slot moves on; what is left is
    # waited for after the faults are off, for up to `final_timeout_seconds`.
    booking_timeout_seconds: float = 150.0
    final_timeout_seconds: float = 240.0
    poll_seconds: float = 0.5
    out_dir: Path = Path("bench-results")
    keep_state: bool = False
    # Count duplicates of the documented SES window (see `_classify`) as duplicates too.
    strict: bool = False

    def fault_spec(self, target: str) -> str:
        offset = PROXY_TARGETS.index(target)
        return (
            f"error={self.fault_rate:g},kinds={FAULT_KINDS},slow={self.slow_ms:g},"
            f"seed={self.seed * 10 + offset}"
        )


# ---- the bookings ---------------------------------------------------------------------------


def chaos_refs(count: int) -> list[str]:
    """Unique Boatsetter-like references ([A-Z0-9]{4,16}) of one run: C + run id + counter."""
    alphabet = string.ascii_uppercase + string.digits
    run = "".join(secrets.choice(alphabet) for _ in range(6))
    return [f"C{run}{n:05d}" for n in range(1, count + 1)]


def booking_data(ref: str) -> dict[str, Any]:
    return sample_charter(ref, guest_name="Chaos Guest", notes="Chaos charter")


@dataclass
class Tracked:
    """One booking of the run, as the driver saw it."""

    ref: str
    booking: Booking
    workflow_id: str
    started: bool = False
    start_error: str | None = None
    signalled: set[str] = field(default_factory=set)
    signal_attempts: int = 0
    outcome: str | None = None  # confirmed | cancelled | failed
    reason: str | None = None  # for failed: the workflow's failure, named
    result: BookingResult | None = None

    @property
    def slug(self) -> str:
        return self.booking.page_slug

    @property
    def members(self) -> dict[str, str]:
        """crew id -> email, captain included."""
        return {m.id: m.email for _, m in self.booking.members}


def _failure_reason(err: WorkflowFailureError) -> str:
    cause = err.cause
    if isinstance(cause, ApplicationError):
        return f"{cause.type or 'ApplicationError'}: {cause.message}"
    return f"{type(cause).__name__}: {cause}" if cause else str(err)


class Driver:
    """Starts bookings, confirms their crew once each reaches awaiting-crew, collects results."""

    def __init__(self, client: Client, settings: Settings, config: ChaosConfig) -> None:
        self.client = client
        self.settings = settings
        self.config = config
        self.finished = 0
        self.started = 0
        self.errors: list[str] = []

    async def start(self, t: Tracked) -> None:
        for attempt in range(5):
            try:
                await start_booking(self.client, self.settings, t.booking)
                t.started = True
                self.started += 1
                return
            except WorkflowAlreadyStartedError:
                if attempt == 0:
                    t.start_error = "a workflow with this id already existed"
                    return
                t.started = True  # an earlier attempt did start it; its answer was lost
                self.started += 1
                return
            except Exception as exc:  # noqa: BLE001 - retried; the server is not faulted
                t.start_error = f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(1)

    async def stage(self, handle: WorkflowHandle[Any, Any]) -> str | None:
        try:
            status = await handle.query(
                contract.QUERY_STATUS, result_type=BookingStatus, rpc_timeout=timedelta(seconds=5)
            )
        except Exception:  # noqa: BLE001 - the worker may be down: ask again
            return None
        return status.stage

    async def confirm_crew(self, t: Tracked, handle: WorkflowHandle[Any, Any]) -> None:
        """One signal per member (a failed RPC is retried; the ledger compares what arrived)."""
        for crew_id in t.members:
            while crew_id not in t.signalled:
                t.signal_attempts += 1
                try:
                    await handle.signal(
                        contract.SIGNAL_CREW_CONFIRMATION,
                        CrewConfirmation(crew_id=crew_id, decision="accept", by="chaos"),
                    )
                    t.signalled.add(crew_id)
                except RPCError as exc:
                    if exc.status == RPCStatusCode.NOT_FOUND:
                        return  # closed: nothing to confirm any more
                    self.errors.append(f"signal {t.workflow_id}: {exc}")
                    await asyncio.sleep(0.5)

    async def drive(self, t: Tracked, timeout: float) -> None:
        """Until the booking has a result or `timeout` passes; safe to call again later."""
        if not t.started or t.outcome is not None:
            return
        deadline = time.monotonic() + timeout
        handle = self.client.get_workflow_handle(t.workflow_id, result_type=BookingResult)
        while len(t.signalled) < len(t.members) and time.monotonic() < deadline:
            stage = await self.stage(handle)
            if stage == "awaiting-crew":
                await self.confirm_crew(t, handle)
                break
            if stage in FINAL_STAGES:
                break
            await asyncio.sleep(self.config.poll_seconds)
        left = deadline - time.monotonic()
        if left <= 0:
            return
        try:
            result = await settled(handle, timeout=left)
            t.result, t.outcome = result, result.outcome
        except WorkflowFailureError as err:
            t.outcome, t.reason = "failed", _failure_reason(err)
        except TimeoutError:
            return
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return  # reported as lost
            self.errors.append(f"result {t.workflow_id}: {exc}")
            return
        self.finished += 1

    async def book(self, t: Tracked) -> None:
        await self.start(t)
        await self.drive(t, self.config.booking_timeout_seconds)
        if t.outcome is None:
            self.finished += 1  # its slot moves on; the booking is waited for at the end


class Killer:
    """SIGKILL of the worker `kills` times: each after a random share of the bookings has
    finished plus a random delay; restarted after `down_seconds`."""

    def __init__(self, stack: DevStack, driver: Driver, config: ChaosConfig) -> None:
        self.stack = stack
        self.driver = driver
        self.config = config
        self.rng = random.Random(config.seed)
        self.kills: list[dict[str, float]] = []
        self.t0 = time.monotonic()

    async def run(self) -> None:
        cfg = self.config
        if cfg.kills <= 0:
            return
        thresholds = sorted(
            int(self.rng.uniform(0.0, 0.85) * cfg.bookings) for _ in range(cfg.kills)
        )
        for threshold in thresholds:
            while self.driver.finished < threshold:
                await asyncio.sleep(0.1)
            await asyncio.sleep(self.rng.uniform(0.2, 2.5))
            at = time.monotonic() - self.t0
            await asyncio.to_thread(self.stack.kill_worker)
            down = self.rng.uniform(*cfg.down_seconds)
            await asyncio.sleep(down)
            await asyncio.to_thread(self.stack.start_worker)
            self.kills.append(
                {
                    "at_s": round(at, 2),
                    "down_s": round(down, 2),
                    "finished_before": self.driver.finished,
                    "restarted_after_s": round(time.monotonic() - self.t0 - at, 2),
                }
            )


# ---- the ledger, read from the emulated systems ---------------------------------------------


def _calendar(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    path = settings.state_dir.resolve() / "calendar.json"
    entries = json.loads(path.read_text()) if path.exists() else {}
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in entries.values():
        found[str(entry.get("booking_ref"))].append(entry)
    return found


def _scc_items(aws: AwsClients, settings: Settings) -> dict[str, list[dict[str, Any]]]:
    de = TypeDeserializer()
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for page in aws.dynamodb.get_paginator("scan").paginate(TableName=settings.events_table):
        for raw in page["Items"]:
            item = {k: de.deserialize(v) for k, v in raw.items()}
            found[str(item.get("booking_ref"))].append(item)
    return found


def ledger_takeovers(aws: AwsClients, settings: Settings, workflow_ids: set[str]) -> dict[str, int]:
    """Effect-ledger keys of this run claimed more than once (key -> claims): an attempt died
    or failed between claim and record, and a later one took the claim over (and did the effect
    again, unless the first attempt never got to it)."""
    keys = {}
    for page in aws.dynamodb.get_paginator("scan").paginate(TableName=settings.ledger_table):
        for raw in page["Items"]:
            key = raw["key"]["S"]
            claims = int(raw.get("attempts", {}).get("N", "1"))
            if claims > 1 and key.split(":")[1] in workflow_ids:
                keys[key] = claims
    return dict(sorted(keys.items()))


def _page_exists(aws: AwsClients, settings: Settings, slug: str) -> bool:
    try:
        key = f"{settings.guest_key_prefix}{slug}.html"
        aws.s3.head_object(Bucket=settings.guest_bucket, Key=key)
    except ClientError:
        return False
    return True


def _invalidations(aws: AwsClients, settings: Settings, slugs: set[str]) -> dict[str, list[str]]:
    """slug -> the CallerReference of each invalidation of its page: every page of the listing,
    then each invalidation's batch."""
    ids: list[str] = []
    for page in aws.cloudfront.get_paginator("list_invalidations").paginate(
        DistributionId=settings.distribution_id
    ):
        ids += [s["Id"] for s in page["InvalidationList"].get("Items", []) or []]
    found: dict[str, list[str]] = defaultdict(list)
    prefix = settings.guest_path_prefix
    for inv_id in ids:
        inv = aws.cloudfront.get_invalidation(DistributionId=settings.distribution_id, Id=inv_id)
        batch = inv["Invalidation"]["InvalidationBatch"]
        for path in batch["Paths"].get("Items", []) or []:
            slug = path[len(prefix) :] if path.startswith(prefix) else ""
            if slug in slugs:  # "/g/{slug}" only; "/g/{slug}/" rides in the same batch
                found[slug].append(str(batch.get("CallerReference", "")))
    return dict(found)


def _mail_kind(subject: str) -> str:
    for prefix, kind in (
        ("Can you crew", "invite"),
        ("Reminder:", "reminder"),
        ("Rescheduled:", "rescheduled"),
        ("Cancelled:", "cancelled"),
        ("Confirmed:", "captain-summary"),
    ):
        if subject.startswith(prefix):
            return kind
    return "other"


def _mail(settings: Settings, refs: set[str]) -> dict[str, Counter[tuple[str, str]]]:
    """ref -> Counter of (kind, recipient)."""
    found: dict[str, Counter[tuple[str, str]]] = defaultdict(Counter)
    for mail in sent_mail(settings.aws_endpoint_url or ""):
        words = {w.strip(":?,") for w in mail.subject.split()}
        for ref in words & refs:
            for to in mail.to:
                found[ref][(_mail_kind(mail.subject), to)] += 1
    return found


async def _failure_text(client: Client, failure: Any) -> str:
    """A failure from history, decrypted by the client's codec: type and message, causes too."""
    copy = type(failure)()
    copy.CopyFrom(failure)
    try:
        exc: BaseException | None = await client.data_converter.decode_failure(copy)
    except Exception as err:  # noqa: BLE001 - a diagnostic only
        return f"(undecodable failure: {type(err).__name__})"
    parts: list[str] = []
    while exc is not None and len(parts) < 3:
        kind = exc.type if isinstance(exc, ApplicationError) and exc.type else type(exc).__name__
        message = str(exc).removeprefix(f"{kind}: ")
        parts.append(f"{kind}: {message}"[:160])
        exc = exc.__cause__
    return " <- ".join(parts)


async def _idempotency_key(client: Client, payloads: Any) -> str | None:
    """The `idempotency_key` of an activity's input, decrypted by the client's codec."""
    if not payloads.payloads:
        return None
    try:
        codec = client.data_converter.payload_codec
        first = payloads.payloads[0]
        plain = (await codec.decode([first]))[0] if codec else first
        key = json.loads(plain.data).get("idempotency_key")
    except Exception:  # noqa: BLE001 - a diagnostic only
        return None
    return str(key) if key else None


async def _history_figures(client: Client, workflow_id: str) -> dict[str, Any]:
    signals = retries = wft_timeouts = wft_failures = activity_failures = 0
    scheduled: dict[int, Any] = {}
    retried: list[dict[str, Any]] = []
    try:
        async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
            kind = event.event_type
            if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                attrs = event.activity_task_scheduled_event_attributes
                scheduled[event.event_id] = attrs
            if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
                if (
                    event.workflow_execution_signaled_event_attributes.signal_name
                    == contract.SIGNAL_CREW_CONFIRMATION
                ):
                    signals += 1
            elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                started = event.activity_task_started_event_attributes
                retries += max(0, started.attempt - 1)
                if started.attempt > 1:
                    last = (
                        await _failure_text(client, started.last_failure)
                        if started.HasField("last_failure")
                        else None
                    )
                    sched = scheduled.get(started.scheduled_event_id)
                    retried.append(
                        {
                            "activity": sched.activity_type.name if sched else "?",
                            "attempt": started.attempt,
                            "last_failure": last,
                            "idempotency_key": (
                                await _idempotency_key(client, sched.input) if sched else None
                            ),
                        }
                    )
            elif kind in (
                EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
                EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
            ):
                activity_failures += 1
            elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
                wft_timeouts += 1
            elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                wft_failures += 1
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return {"exists": False}
        raise
    return {
        "exists": True,
        "signals": signals,
        "activity_retries": retries,
        "retried_activities": retried,
        "activity_failed_events": activity_failures,
        "workflow_task_timeouts": wft_timeouts,
        "workflow_task_failures": wft_failures,
    }


async def read_ledger(
    client: Client, settings: Settings, aws: AwsClients, tracked: list[Tracked]
) -> dict[str, Any]:
    """Per booking: every effect counted where it landed, and what is duplicated or missing."""
    refs = {t.ref for t in tracked}
    slugs = {t.slug for t in tracked}
    calendar = await asyncio.to_thread(_calendar, settings)
    scc = await asyncio.to_thread(_scc_items, aws, settings)
    invalidations = await asyncio.to_thread(_invalidations, aws, settings, slugs)
    mail = await asyncio.to_thread(_mail, settings, refs)
    takeovers = await asyncio.to_thread(
        ledger_takeovers, aws, settings, {t.workflow_id for t in tracked}
    )
    pages = await asyncio.gather(
        *(asyncio.to_thread(_page_exists, aws, settings, t.slug) for t in tracked)
    )
    histories = await _gather_limited(
        [_history_figures(client, t.workflow_id) for t in tracked], limit=20
    )

    per_booking: list[dict[str, Any]] = []
    duplicates: list[dict[str, Any]] = []
    missing: list[str] = []
    for t, page, history in zip(tracked, pages, histories, strict=True):
        members = t.members
        captain = t.booking.captain.email
        mails = mail.get(t.ref, Counter())
        caller_refs = Counter(invalidations.get(t.slug, []))
        effects = {
            "calendar_entries": len(calendar.get(t.ref, [])),
            "scc_items": len(scc.get(t.ref, [])),
            "guest_page_objects": int(page),
            "invalidations": sum(caller_refs.values()),
            "invalidation_caller_references": len(caller_refs),
            "invites": {to: mails[("invite", to)] for to in sorted(members.values())},
            "captain_summaries": mails[("captain-summary", captain)],
            "other_mail": {
                f"{kind}:{to}": n
                for (kind, to), n in sorted(mails.items())
                if kind not in ("invite", "captain-summary") or to not in members.values()
            },
            "signals_received": history.get("signals", 0),
            "signals_sent": len(t.signalled),
        }
        wf = t.workflow_id
        # effect -> (count, the effect-ledger key that guards it, if any)
        singles: dict[str, tuple[int, str | None]] = {
            "calendar entry": (effects["calendar_entries"], None),
            "SCC item": (effects["scc_items"], None),
            "CloudFront invalidation (distinct CallerReference)": (len(caller_refs), None),
            "captain summary": (effects["captain_summaries"], f"email:{wf}:captain-summary:1"),
            **{
                f"invite to {to}": (effects["invites"][to], f"email:{wf}:invite:1:{crew_id}")
                for crew_id, to in members.items()
            },
        }
        for name, (n, key) in singles.items():
            if n > 1:
                duplicates.append(
                    _classify(t.ref, name, n, key, takeovers, history.get("retried_activities"))
                )
            if n == 0 and t.outcome == "confirmed":
                missing.append(f"{t.ref}: no {name}")
        for caller_ref, n in caller_refs.items():
            if n > 1:  # AWS answers a repeated CallerReference with the first invalidation
                duplicates.append(
                    {
                        **_classify(
                            t.ref,
                            "CloudFront invalidation",
                            n,
                            f"cloudfront:{caller_ref}",
                            takeovers,
                            history.get("retried_activities"),
                        ),
                        "class": "cloudfront-same-caller-reference",
                    }
                )
        for name, n in effects["other_mail"].items():
            if n > 1:
                duplicates.append(_classify(t.ref, f"mail {name}", n, None, {}, None))
        if effects["signals_received"] > effects["signals_sent"]:
            extra = effects["signals_received"] - effects["signals_sent"]
            duplicates.append(
                _classify(t.ref, f"{extra} signal(s) more than sent", 2, None, {}, None)
            )
        if t.outcome == "confirmed" and not page:
            missing.append(f"{t.ref}: no guest page object")
        per_booking.append(
            {
                "ref": t.ref,
                "workflow_id": t.workflow_id,
                "slug": t.slug,
                "outcome": t.outcome,
                "reason": t.reason,
                "effects": effects,
                "history": history,
            }
        )
    return {
        "per_booking": per_booking,
        "duplicates": duplicates,
        "missing": missing,
        "ledger_takeovers": takeovers,
        "histories": histories,
    }


KILLED = "TimeoutError: activity StartToClose timeout"


def _classify(
    ref: str,
    effect: str,
    count: int,
    ledger_key: str | None,
    takeovers: dict[str, int],
    retried: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    """A duplicate is in the documented window (`ses-window`) only with all the evidence: its
    ledger key was claimed again (taken over), an attempt of the activity with that key ended by
    its start-to-close timeout (the worker was killed while it ran, so its answer was lost), and
    the effect is there no more often than the key was claimed. Anything else is `unexplained`."""
    entry: dict[str, Any] = {
        "ref": ref,
        "effect": effect,
        "count": count,
        "ledger_key": ledger_key,
        "class": "unexplained",
    }
    if ledger_key is None or ledger_key not in takeovers:
        return entry
    claims = takeovers[ledger_key]
    entry["ledger_claims"] = claims
    idem = ledger_key.split(":", 1)[1]
    lost_answers = [
        r
        for r in retried or []
        if r.get("idempotency_key")
        and idem.startswith(r["idempotency_key"])
        and (r.get("last_failure") or "").startswith(KILLED)
    ]
    if lost_answers and count <= claims and ledger_key.startswith("email:"):
        entry["class"] = "ses-window"
    entry["evidence"] = [r.get("last_failure") for r in lost_answers]
    return entry


async def _gather_limited(coros: list[Any], limit: int) -> list[Any]:
    gate = asyncio.Semaphore(limit)

    async def one(coro: Any) -> Any:
        async with gate:
            return await coro

    return list(await asyncio.gather(*(one(c) for c in coros)))


# ---- the run --------------------------------------------------------------------------------


def faults_off(stack: DevStack) -> None:
    for target in PROXY_TARGETS:
        with contextlib.suppress(Exception):
            stack.set_faults(target, "")


async def run_chaos(
    stack: DevStack, config: ChaosConfig, console: Console | None = None
) -> dict[str, Any]:
    """The run against a started stack; returns the report (see `print_report`). Leaves the
    faults off and the worker running."""
    out = console or Console(quiet=True)
    settings = stack.settings
    client = await connect(settings)
    aws = aws_clients(settings)  # straight to moto: the ledger is read without faults
    tracked = [
        Tracked(ref, validate(booking_data(ref)), contract.workflow_id_for(ref))
        for ref in chaos_refs(config.bookings)
    ]
    driver = Driver(client, settings, config)
    killer = Killer(stack, driver, config)
    for target in PROXY_TARGETS:
        stack.reset_fault_counters(target)
    specs = {t: config.fault_spec(t) for t in PROXY_TARGETS}
    started_at = time.monotonic()
    killing: asyncio.Task[None] | None = None
    try:
        for target, spec in specs.items():
            stack.set_faults(target, spec)
        out.print(
            f"chaos: {config.bookings} bookings, {config.concurrency} in flight, "
            f"{config.kills} worker kills, faults {specs['aws']} (seed per target)"
        )
        queue = iter(tracked)

        async def slot() -> None:
            for t in queue:
                await driver.book(t)

        killing = asyncio.create_task(killer.run())
        await asyncio.gather(*(slot() for _ in range(min(config.concurrency, len(tracked)))))
        await killing
        faulty_s = time.monotonic() - started_at
    finally:
        if killing is not None and not killing.done():
            killing.cancel()
            with contextlib.suppress(BaseException):
                await killing
        counters = {}
        for target in PROXY_TARGETS:
            with contextlib.suppress(Exception):
                counters[target] = stack.fault_counters(target)
        faults_off(stack)
        if stack.procs.get("worker") is None or stack.procs["worker"].poll() is not None:
            await asyncio.to_thread(stack.start_worker)
    left = [t for t in tracked if t.started and t.outcome is None]
    out.print(
        f"faults off after {faulty_s:.0f} s; {len(left)} booking(s) still running, "
        f"waiting up to {config.final_timeout_seconds:.0f} s"
    )
    await asyncio.gather(*(driver.drive(t, config.final_timeout_seconds) for t in left))
    total_s = time.monotonic() - started_at
    ledger = await read_ledger(client, settings, aws, tracked)
    return build_report(config, specs, counters, tracked, killer, driver, ledger, total_s)


def build_report(
    config: ChaosConfig,
    specs: dict[str, str],
    counters: dict[str, dict[str, Any]],
    tracked: list[Tracked],
    killer: Killer,
    driver: Driver,
    ledger: dict[str, Any],
    total_s: float,
) -> dict[str, Any]:
    by_kind: Counter[str] = Counter()
    for c in counters.values():
        by_kind.update({k: int(v) for k, v in c.get("faults", {}).items() if v})
    histories = ledger["histories"]
    lost = [
        t.ref
        for t, h in zip(tracked, histories, strict=True)
        if t.started and (t.outcome is None or not h.get("exists", False))
    ]
    not_started = [f"{t.ref}: {t.start_error}" for t in tracked if not t.started]
    failed = [t for t in tracked if t.outcome == "failed"]
    counted = [d for d in ledger["duplicates"] if config.strict or d["class"] == "unexplained"]
    unnamed = [t.ref for t in failed if not t.reason]
    reasons = Counter(t.reason or "unnamed" for t in failed)
    report: dict[str, Any] = {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "bookings": len(tracked),
        "started": sum(t.started for t in tracked),
        "completed": sum(t.outcome == "confirmed" for t in tracked),
        "cancelled": sum(t.outcome == "cancelled" for t in tracked),
        "failed": len(failed),
        "failed_reasons": dict(reasons),
        "failed_without_reason": unnamed,
        "not_started": not_started,
        "faults_injected": dict(sorted(by_kind.items())),
        "faults_injected_total": sum(by_kind.values()),
        "faults_by_target": {
            t: {"requests": c.get("requests"), "faults": c.get("faults")}
            for t, c in counters.items()
        },
        "fault_specs": specs,
        "kills": len(killer.kills),
        "kill_log": killer.kills,
        "retries": sum(h.get("activity_retries", 0) for h in histories),
        "retry_reasons": retry_reasons(histories),
        "activity_failed_events": sum(h.get("activity_failed_events", 0) for h in histories),
        "workflow_task_timeouts": sum(h.get("workflow_task_timeouts", 0) for h in histories),
        "workflow_task_failures": sum(h.get("workflow_task_failures", 0) for h in histories),
        "signals_sent": sum(len(t.signalled) for t in tracked),
        "signal_attempts": sum(t.signal_attempts for t in tracked),
        "signals_received": sum(h.get("signals", 0) for h in histories),
        "duplicates": len(counted),
        "duplicates_all": len(ledger["duplicates"]),
        "duplicates_ses_window": sum(d["class"] == "ses-window" for d in ledger["duplicates"]),
        "cloudfront_same_caller_reference_repeats": sum(
            d["class"] == "cloudfront-same-caller-reference" for d in ledger["duplicates"]
        ),
        "duplicate_details": ledger["duplicates"],
        "lost": len(lost) + len(not_started),
        "lost_refs": lost,
        "missing_effects": len(ledger["missing"]),
        "missing_details": ledger["missing"],
        "ledger_takeovers": ledger["ledger_takeovers"],
        "driver_errors": driver.errors[:20],
        "wall_s": round(total_s, 1),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()},
        "per_booking": ledger["per_booking"],
    }
    report["ok"] = (
        report["duplicates"] == 0
        and report["lost"] == 0
        and report["missing_effects"] == 0
        and not unnamed
    )
    return report


def retry_reasons(histories: list[dict[str, Any]]) -> dict[str, int]:
    """activity: the failure that made it retry (ids and numbers out) -> count, most first."""
    reasons: Counter[str] = Counter()
    for h in histories:
        for r in h.get("retried_activities", []):
            reason = (r["last_failure"] or "no failure recorded").split(" <- ")[0]
            reason = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27,}", "<id>", reason)
            reason = re.sub(r"https?://[^\s)]+", "<url>", reason)
            reason = re.sub(r"\b\d+\b", "N", reason)[:140]
            reasons[f"{r['activity']}: {reason}"] += 1
    return dict(reasons.most_common())


def print_report(console: Console, report: dict[str, Any]) -> None:
    def say(text: str) -> None:
        console.print(text, markup=False, highlight=False, soft_wrap=True)

    say(f"bookings: {report['bookings']}")
    say(f"completed: {report['completed']}")
    reasons = "; ".join(f"{n} x {r}" for r, n in report["failed_reasons"].items())
    say(f"failed: {report['failed']}" + (f" ({reasons})" if reasons else ""))
    kinds = ", ".join(f"{k} {n}" for k, n in report["faults_injected"].items()) or "none"
    say(f"faults injected: {report['faults_injected_total']} ({kinds})")
    for target, figures in report["faults_by_target"].items():
        total = sum((figures["faults"] or {}).values())
        say(f"  {target}: {figures['requests']} requests, {total} faults")
    say(f"kills: {report['kills']}")
    say(f"retries: {report['retries']} (workflow task timeouts {report['workflow_task_timeouts']})")
    for reason, n in list(report["retry_reasons"].items())[:10]:
        say(f"  {n} x {reason}")
    say(f"signals: {report['signals_sent']} sent, {report['signals_received']} received")
    if report["ledger_takeovers"]:
        say(f"ledger claims taken over: {len(report['ledger_takeovers'])}")
    for d in report["duplicate_details"][:20]:
        evidence = f", claims {d['ledger_claims']}" if d.get("ledger_claims") else ""
        say(f"  duplicate ({d['class']}): {d['ref']}: {d['count']} x {d['effect']}{evidence}")
    counted = "counted: --strict" if report["config"]["strict"] else "not counted below"
    say(
        "duplicates in the documented SES window (worker killed after the send, before the "
        f"ledger recorded it): {report['duplicates_ses_window']} ({counted})"
    )
    repeats = report["cloudfront_same_caller_reference_repeats"]
    say(
        "CloudFront invalidations repeated with the same CallerReference (AWS answers a repeat "
        f"with the first; moto makes a new one): {repeats}"
    )
    for line in report["missing_details"][:20]:
        say(f"  missing: {line}")
    for ref in report["lost_refs"][:20]:
        say(f"  lost: {ref}")
    say(f"missing effects: {report['missing_effects']}")
    say(f"wall time: {report['wall_s']} s")
    # The two lines scripts look for, verbatim.
    say(f"duplicates: {report['duplicates']}")
    say(f"lost: {report['lost']}")


def write_report(report: dict[str, Any], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out_dir / f"chaos-{stamp}.json"
    path.write_text(json.dumps(report, indent=1, default=str))
    return path


# ---- the command ----------------------------------------------------------------------------


def chaos_settings(state_dir: Path) -> Settings:
    """Every port free, the state in `state_dir`; short retry intervals and activity timeouts
    (as the test stack), so a killed worker's activities are retried within seconds."""
    return isolated_settings(state_dir, **QUICK_RETRIES)


def run_chaos_cli(config: ChaosConfig, console: Console) -> int:
    """Own stack, the run, the report; 0 only without duplicates, losses or missing effects."""
    state = Path(tempfile.mkdtemp(prefix="charters-chaos-"))
    stack: DevStack | None = None
    try:
        with without_charters_env():
            settings = chaos_settings(state)
            console.print(f"starting a chaos stack in {state} …")
            stack = DevStack(settings, fresh=True).start()
            report = asyncio.run(run_chaos(stack, config, console))
    except KeyboardInterrupt:
        console.print("interrupted")
        return 130
    finally:
        if stack is not None:
            stack.stop()
        if not config.keep_state:
            shutil.rmtree(state, ignore_errors=True)
    print_report(console, report)
    path = write_report(report, config.out_dir)
    console.print(f"report: {path}")
    return 0 if report["ok"] else 1
