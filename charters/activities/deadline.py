"""The deadline of the running activity attempt, so that no attempt goes on sending after its
start-to-close timeout.

Temporal's start-to-close timeout ends an attempt for the workflow, not the thread running a sync
activity: without a deadline of its own, that thread could still send a request while the next
attempt sends it again. The deadline is the attempt's `started_time` plus its start-to-close
timeout (and no later than `scheduled_time` plus schedule-to-close), less `CLOCK_SKEW_SECONDS`
for the distance between the server's clock and the worker's; it is never further away than the
timeout itself, so a server clock ahead of the worker's (the time-skipping test server) cannot
stretch it.

Two uses: every HTTP request of an activity gets per-phase timeouts that end before the deadline
(`http_timeout`), and every boto3 request of an activity client is refused when its worst case
(connect + read) no longer fits (`guard_boto3`). Outside an activity, or for an activity with no
timeout, there is no deadline and both leave the defaults alone."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

ATTEMPT_DEADLINE = "AttemptDeadline"
CLOCK_SKEW_SECONDS = 0.25
"""Subtracted from every deadline: NTP keeps a worker's clock within milliseconds of the
server's; this leaves room for the time between the check and the first byte."""
MIN_REQUEST_SECONDS = 0.3
"""Less than this left in the attempt: an HTTP request is not started at all."""
SEND_SHARE = 0.5
"""Of the time an HTTP request may take, the part for the pool, connect and write phases: the
request is fully sent within half the time left, the other half is for reading the answer."""

_exempt: contextvars.ContextVar[bool] = contextvars.ContextVar("deadline_exempt", default=False)


def remaining() -> float | None:
    """Seconds left in this activity attempt, or None outside an activity or without a
    timeout. May be negative: the attempt is over for Temporal."""
    if not activity.in_activity():
        return None
    info = activity.info()
    now = datetime.now(UTC)
    ends: list[float] = []
    if info.start_to_close_timeout:
        timeout = info.start_to_close_timeout.total_seconds()
        ends.append(min(timeout, (info.started_time - now).total_seconds() + timeout))
    if info.schedule_to_close_timeout:
        timeout = info.schedule_to_close_timeout.total_seconds()
        ends.append((info.scheduled_time - now).total_seconds() + timeout)
    if not ends:
        return None
    return min(ends) - CLOCK_SKEW_SECONDS


def too_near(what: str, needed: float, left: float) -> ApplicationError:
    """Retryable: the next attempt starts with its whole timeout."""
    return ApplicationError(
        f"not sending {what}: this attempt ends in {max(left, 0):.1f}s, less than the "
        f"{needed:.1f}s the request may take; the next attempt sends it",
        type=ATTEMPT_DEADLINE,
    )


def require(seconds: float, what: str) -> None:
    """Raises `too_near` unless `seconds` fit before the attempt's deadline."""
    left = remaining()
    if left is not None and left < seconds:
        raise too_near(what, seconds, left)


def http_timeout(default: httpx.Timeout, what: str) -> httpx.Timeout:
    """Per-phase timeouts that end before the attempt's deadline: pool + connect + write (the
    request leaves within `SEND_SHARE` of the time left) and the wait for the answer, each no
    longer than `default`'s. httpx's read timeout bounds each wait for data, not the whole
    answer: a server that trickles its answer could hold the thread reading after the deadline,
    but the request was sent before it. Raises `too_near` when less than
    `MIN_REQUEST_SECONDS` is left."""
    left = remaining()
    if left is None:
        return default
    if left < MIN_REQUEST_SECONDS:
        raise too_near(what, MIN_REQUEST_SECONDS, left)
    send = left * SEND_SHARE / 3

    def cap(configured: float | None, bound: float) -> float:
        return bound if configured is None else min(configured, bound)

    return httpx.Timeout(
        pool=cap(default.pool, send),
        connect=cap(default.connect, send),
        write=cap(default.write, send),
        read=cap(default.read, left * (1 - SEND_SHARE)),
    )


@contextlib.contextmanager
def finishing() -> Iterator[None]:
    """Requests made inside are not refused by `guard_boto3`: recording an effect that has
    already happened (the ledger's record) is not a new effect, and refusing it would make the
    next attempt repeat the effect."""
    token = _exempt.set(True)
    try:
        yield
    finally:
        _exempt.reset(token)


def guard_boto3(client: Any, request_seconds: float) -> Any:
    """Refuses every HTTP request of `client` (botocore's retries included) made inside an
    activity attempt that has less than `request_seconds` (the client's connect + read timeout,
    one request's worst case) left: raised from botocore's `before-send` event, before a byte
    leaves. Returns the client."""
    service = client.meta.service_model.service_id.hyphenize()

    def before_send(request: Any, **_: Any) -> None:
        if _exempt.get():
            return
        left = remaining()
        if left is not None and left < request_seconds:
            raise too_near(f"{service} request", request_seconds, left)

    client.meta.events.register(f"before-send.{service}", before_send)
    return client
