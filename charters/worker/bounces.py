"""SES bounces and complaints, delivered to the booking's workflow.

Path: every send names the configuration set (`ses_configuration_set`); its event destination
publishes Bounce, Complaint and Reject events to an SNS topic; an SQS queue
(`bounce_queue_url`) subscribes to the topic; this listener long-polls the queue and signals
`contract.SIGNAL_EMAIL_BOUNCED` with `models.EmailBounced` to the workflow named in the event's
`mail.tags` (SES copies the send's EmailTags there: SES guide, "Contents of event data that
Amazon SES publishes to Amazon SNS", the `mail` object's `tags`).

It runs inside the worker process as a background task (not as its own command): the worker
already holds a Temporal client with the payload codec (signals must be encrypted like every
other payload) and AWS credentials, so there is no further process to deploy, supervise or give
a role; several workers polling one queue is safe (a message is deleted only once signalled).

Who the mail was for comes from the tags too: a crew member (`crew_id`), the guest (`kind`
`guest-*`) or operations (`kind` `ops-alert`). A bounce is transient when SES's `bounceType` is
`Transient` (`General`, `MailboxFull`, `MessageTooLarge`, `ContentRejected`,
`AttachmentRejected`: "you may be able to send to this recipient in the future"); `Permanent`
and `Undetermined` are not (SES guide, "Contents of event data that Amazon SES publishes to
Amazon SNS", the bounce object's bounce types).

At-least-once: SNS and SQS may deliver an event twice, so the workflow must treat a repeated
EmailBounced (same `message_id`, or a seat already blocked) as a no-op.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from charters import contract
from charters.activities.email import (
    KIND_GUEST_PREFIX,
    KIND_OPS_ALERT,
    TAG_CREW,
    TAG_KIND,
    TAG_WORKFLOW,
)
from charters.models import EmailBounced
from charters.settings import Settings
from charters.worker import wiring

log = logging.getLogger("charters.bounces")

_ADDRESS = re.compile(r"[^\s<>@;,]+@[^\s<>@;,]+")
LONG_POLL_SECONDS = 20  # SQS's longest receive wait
KINDS = {"Bounce": "bounce", "Complaint": "complaint", "Reject": "rejected"}


@dataclass(frozen=True)
class Bounce:
    workflow_id: str
    event: EmailBounced


def _tag(tags: dict[str, Any], name: str) -> str | None:
    values = tags.get(name) or []
    return str(values[0]) if values else None


Recipient = Literal["crew", "guest", "operations"]


def _recipient(tags: dict[str, Any]) -> Recipient | None:
    kind = _tag(tags, TAG_KIND) or ""
    if kind == KIND_OPS_ALERT:
        return "operations"
    if kind.startswith(KIND_GUEST_PREFIX):
        return "guest"
    return "crew" if _tag(tags, TAG_CREW) else None


def _transient(kind: str, event: dict[str, Any]) -> bool:
    return kind == "bounce" and event.get("bounce", {}).get("bounceType") == "Transient"


def _reason(kind: str, event: dict[str, Any]) -> str:
    """A short reason without any address (it enters the workflow's history and status)."""
    if kind == "bounce":
        bounce = event.get("bounce", {})
        codes = [r.get("diagnosticCode", "") for r in bounce.get("bouncedRecipients", [])]
        detail = "; ".join(c for c in codes if c) or "no diagnostic"
        text = f"{bounce.get('bounceType', '?')}/{bounce.get('bounceSubType', '?')}: {detail}"
    elif kind == "complaint":
        complaint = event.get("complaint", {})
        text = f"complaint: {complaint.get('complaintFeedbackType', 'unspecified')}"
    else:
        text = f"rejected: {event.get('reject', {}).get('reason', 'unspecified')}"
    return _ADDRESS.sub("<address>", text)[:300]


def parse(body: str) -> Bounce | None:
    """An SQS message body (an SNS envelope, or the SES event itself with raw delivery) as a
    bounce for a workflow; None for other events (Delivery, Send, ...) or mail we cannot map
    back (no workflow tag, or no recipient tag)."""
    data = json.loads(body)
    if data.get("Type") == "Notification" and isinstance(data.get("Message"), str):
        data = json.loads(data["Message"])
    # `eventType` with event publishing; `notificationType` with identity notifications, which
    # carry no tags and so cannot be mapped back.
    kind = KINDS.get(str(data.get("eventType") or data.get("notificationType") or ""))
    if kind is None:
        return None
    mail = data.get("mail", {}) or {}
    tags = mail.get("tags", {}) or {}
    workflow_id, recipient = _tag(tags, TAG_WORKFLOW), _recipient(tags)
    if recipient == "operations":
        log.warning(
            "SES %s for an operations alert (message %s): check CHARTERS_OPERATIONS_EMAIL",
            kind,
            mail.get("messageId"),
        )
    if not workflow_id or recipient is None:
        log.warning(
            "SES %s without workflow/recipient tags (message %s): not delivered",
            kind,
            mail.get("messageId"),
        )
        return None
    return Bounce(
        workflow_id,
        EmailBounced(
            crew_id=_tag(tags, TAG_CREW) if recipient == "crew" else None,
            kind=kind,  # type: ignore[arg-type]
            reason=_reason(kind, data),
            recipient=recipient,
            transient=_transient(kind, data),
            message_id=mail.get("messageId"),
        ),
    )


async def deliver(client: Client, bounce: Bounce) -> bool:
    """Signals the workflow; True when the message is done with (delivered, or the workflow no
    longer exists or has closed), False to leave it on the queue for another try."""
    handle = client.get_workflow_handle(bounce.workflow_id)
    try:
        await handle.signal(contract.SIGNAL_EMAIL_BOUNCED, bounce.event)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            log.info("bounce for %s: workflow closed or unknown", bounce.workflow_id)
            return True
        log.warning("bounce for %s not delivered yet: %s", bounce.workflow_id, exc)
        return False
    log.info(
        "%s%s delivered to %s for %s",
        bounce.event.kind,
        " (transient)" if bounce.event.transient else "",
        bounce.workflow_id,
        bounce.event.crew_id or bounce.event.recipient,
    )
    return True


async def _in_daemon_thread(fn: Callable[..., Any], **kwargs: Any) -> Any:
    """Runs a blocking call in a daemon thread: a long poll still waiting when the worker stops
    must not hold the process's exit (asyncio.to_thread's pool threads are joined at exit)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Any] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if done.done():
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(result)

    def run() -> None:
        try:
            result, error = fn(**kwargs), None
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
            result, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=run, name="ses-bounces-poll", daemon=True).start()
    return await done


async def poll_once(client: Client, sqs: Any, queue_url: str, wait_seconds: int) -> int:
    """One long poll; returns how many messages were handled (and deleted)."""
    answer = await _in_daemon_thread(
        sqs.receive_message,
        QueueUrl=queue_url,
        MaxNumberOfMessages=10,
        WaitTimeSeconds=wait_seconds,
    )
    handled = 0
    for message in answer.get("Messages", []):
        try:
            bounce = parse(message["Body"])
        except (ValueError, AttributeError) as exc:
            log.error("unreadable SES event dropped: %s", exc)
            bounce = None
        if bounce is not None and not await deliver(client, bounce):
            continue  # visible again after the queue's visibility timeout
        await asyncio.to_thread(
            sqs.delete_message, QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"]
        )
        handled += 1
    return handled


async def run(
    client: Client, sqs: Any, queue_url: str, stop: asyncio.Event, wait_seconds: int = 20
) -> None:
    """Polls until `stop` is set; a failed poll (SQS unreachable) is logged and retried."""
    while not stop.is_set():
        try:
            await poll_once(client, sqs, queue_url, wait_seconds)
        except Exception as exc:  # noqa: BLE001 - the listener must outlive a failed poll
            log.error("SES events queue poll failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=5)


def start(client: Client, settings: Settings, stop: asyncio.Event) -> asyncio.Task[None] | None:
    """The listener as a task of the worker process, or None when no queue is configured."""
    queue_url = settings.bounce_queue_url
    if not queue_url:
        return None
    log.info("SES bounce/complaint listener on %s", queue_url)
    sqs = wiring.sqs_client(settings, LONG_POLL_SECONDS)
    return asyncio.create_task(
        run(client, sqs, queue_url, stop, LONG_POLL_SECONDS), name="ses-bounces"
    )
