"""What a chaos run left in the emulated systems, read straight from them (never through the
workflow's own view): calendar entries (the stand-in's JSON file), SCC items (DynamoDB), guest
page objects (S3), CloudFront invalidations, SES messages (moto's sent mail), effect-ledger claims,
and from Temporal each history's signals, updates and activity retries."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from charters.settings import Settings
from charters.worker.replay import HistoryReplay
from charters.worker.wiring import AwsClients
from charters_dev.mailbox import sent_mail


def calendar_entries(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    path = settings.state_dir.resolve() / "calendar.json"
    entries = json.loads(path.read_text()) if path.exists() else {}
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in entries.values():
        found[str(entry.get("booking_ref"))].append(entry)
    return found


def scc_items(aws: AwsClients, settings: Settings) -> dict[str, list[dict[str, Any]]]:
    de = TypeDeserializer()
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for page in aws.dynamodb.get_paginator("scan").paginate(TableName=settings.events_table):
        for raw in page["Items"]:
            item = {k: de.deserialize(v) for k, v in raw.items()}
            found[str(item.get("booking_ref"))].append(item)
    return found


def ledger_claims(
    aws: AwsClients, settings: Settings
) -> Iterator[tuple[list[str], dict[str, Any]]]:
    """Every effect-ledger item, with its key split at ':' (`email`, the workflow id, then the
    workflow's own step key)."""
    for page in aws.dynamodb.get_paginator("scan").paginate(TableName=settings.ledger_table):
        for raw in page["Items"]:
            yield raw["key"]["S"].split(":"), raw


def ledger_takeovers(aws: AwsClients, settings: Settings, workflow_ids: set[str]) -> dict[str, int]:
    """Effect-ledger keys of this run claimed more than once (key -> claims): an attempt died
    or failed between claim and record, and a later one took the claim over (and did the effect
    again, unless the first attempt never got to it)."""
    keys = {}
    for parts, raw in ledger_claims(aws, settings):
        claims = int(raw.get("attempts", {}).get("N", "1"))
        if claims > 1 and parts[1] in workflow_ids:
            keys[":".join(parts)] = claims
    return dict(sorted(keys.items()))


ASKING_KINDS = ("invite", "rescheduled")


def asked_in_ledger(
    aws: AwsClients, settings: Settings, workflow_ids: set[str]
) -> dict[str, set[str]]:
    """workflow id -> the crew ids whose invitation the ledger holds a claim for, recorded or
    not: the product tells exactly these members of a cancellation (`only_if_sent`), an
    unrecorded claim included, since its send may have gone out."""
    asked: dict[str, set[str]] = defaultdict(set)
    for parts, _ in ledger_claims(aws, settings):
        if len(parts) >= 5 and parts[1] in workflow_ids and parts[2] in ASKING_KINDS:
            asked[parts[1]].add(parts[4])
    return asked


def unanswered_claims(aws: AwsClients, settings: Settings, workflow_id: str) -> set[str]:
    """The booking's effect-ledger keys claimed with no result recorded: a send whose answer
    never came (SES may or may not have taken it), or one still going."""
    return {
        ":".join(parts)
        for parts, raw in ledger_claims(aws, settings)
        if parts[1] == workflow_id and "result" not in raw
    }


def page_body(aws: AwsClients, settings: Settings, slug: str) -> str | None:
    """The guest page object's content, or None when there is none."""
    try:
        key = f"{settings.guest_key_prefix}{slug}.html"
        answer = aws.s3.get_object(Bucket=settings.guest_bucket, Key=key)
    except ClientError:
        return None
    return str(answer["Body"].read().decode())


def invalidations(aws: AwsClients, settings: Settings, slugs: set[str]) -> dict[str, list[str]]:
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
        ("No longer needed:", "released"),
    ):
        if subject.startswith(prefix):
            return kind
    return "other"


def mail_by_ref(settings: Settings, refs: set[str]) -> dict[str, Counter[tuple[str, str]]]:
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


async def history_figures(
    client: Client, workflow_id: str, replay: HistoryReplay
) -> dict[str, Any]:
    signals = retries = wft_timeouts = wft_failures = activity_failures = 0
    updates: Counter[str] = Counter()
    scheduled: dict[int, Any] = {}
    retried: list[dict[str, Any]] = []
    wft_failure_causes: list[str] = []
    handle = client.get_workflow_handle(workflow_id)
    try:
        history = await handle.fetch_history()
        for event in history.events:
            kind = event.event_type
            if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                attrs = event.activity_task_scheduled_event_attributes
                scheduled[event.event_id] = attrs
            if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
                signals += 1
            elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
                accepted = event.workflow_execution_update_accepted_event_attributes
                updates[accepted.accepted_request.input.name] += 1
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
                failed = event.workflow_task_failed_event_attributes
                if failed.HasField("failure") and len(wft_failure_causes) < 3:
                    wft_failure_causes.append(await _failure_text(client, failed.failure))
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return {"exists": False}
        raise
    replay_failure = await replay.failure(history)
    return {
        "exists": True,
        "replay_failure": replay_failure,
        "signals": signals,
        "updates": dict(updates),
        "activity_retries": retries,
        "retried_activities": retried,
        "activity_failed_events": activity_failures,
        "workflow_task_timeouts": wft_timeouts,
        "workflow_task_failures": wft_failures,
        "workflow_task_failure_causes": wft_failure_causes,
        # the whole history of a booking whose workflow task failed, to replay it by hand
        "history": history.to_json_dict() if wft_failures or replay_failure else None,
    }
