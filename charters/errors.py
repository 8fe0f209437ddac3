"""Error types the workflow reasons about. Non-retryable means a retry cannot fix it."""

from __future__ import annotations

from typing import Any

import httpx
from temporalio.exceptions import ApplicationError

from charters.activities.deadline import ATTEMPT_DEADLINE as ATTEMPT_DEADLINE
from charters.activities.deadline import http_timeout

INVALID_BOOKING = "InvalidBooking"
SCC_AUTH_REJECTED = "SccAuthRejected"
SCC_HEADER_STRIPPED = "SccAuthHeaderStripped"
UPSTREAM_REJECTED = "UpstreamRejected"
UPSTREAM_UNAVAILABLE = "UpstreamUnavailable"
UPSTREAM_AUTH_REJECTED = "UpstreamAuthRejected"
REDACTION_UNVERIFIED = "RedactionUnverified"
# A configuration or permanent error only a person can fix (SES rejecting an address, a wrong
# distribution id, a missing bucket or permission). The workflow blocks the step on it, alerts
# operations once and waits for `resolve_block` (retry or skip).
NEEDS_OPERATOR = "NeedsOperator"
# The calendar entry or SCC event a change was meant for no longer exists (404): a retry cannot
# bring it back, and for a cancellation it means the work is done.
TARGET_GONE = "TargetGone"
IDEMPOTENCY_HEADER = "Idempotency-Key"
"""Sent with every create; the calendar and SCC must answer a repeated key with the first
result and create nothing (README, "Idempotency")."""


def invalid_booking(message: str) -> ApplicationError:
    return ApplicationError(message, type=INVALID_BOOKING, non_retryable=True)


def needs_operator(message: str, fix: str, subject: str | None = None) -> ApplicationError:
    """A permanent error with the fix a person must apply; `subject` names what it concerns (a
    crew member id, a distribution id), shown in `status` and the alert."""
    return ApplicationError(
        message, {"fix": fix, "subject": subject}, type=NEEDS_OPERATOR, non_retryable=True
    )


def target_gone(what: str, ident: str) -> ApplicationError:
    """A change for something that no longer exists: no retry brings it back."""
    return ApplicationError(
        f"the {what} {ident} no longer exists (HTTP 404): it was deleted outside this booking",
        {"fix": f"nothing to change on the {what}; retry the step or skip it"},
        type=TARGET_GONE,
        non_retryable=True,
    )


def send(http: httpx.Client, system: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """One HTTP call, its timeouts ending before the activity attempt's deadline (see
    `charters.activities.deadline`). A connection-level failure (reset, refused, timeout) becomes
    a short, retryable `UpstreamUnavailable` with no chained traceback: httpx's chain can exceed
    the failure size the server accepts into history."""
    timeout = http_timeout(http.timeout, f"{system} {method}")
    try:
        return http.request(method, url, timeout=timeout, **kwargs)
    except httpx.TransportError as exc:
        raise ApplicationError(
            f"{system} unreachable on {method} {httpx.URL(url).path}: {type(exc).__name__}",
            type=UPSTREAM_UNAVAILABLE,
        ) from None


def from_http_response(system: str, response: httpx.Response) -> ApplicationError:
    """Classify a failed HTTP answer: throttling, 5xx and auth (fixed from outside, e.g. a
    rotated token) retry; any other 4xx is one no retry can fix."""
    code = response.status_code
    detail = (
        f"{system} answered HTTP {code} to {response.request.method} {response.request.url.path}"
    )
    if code in (401, 403):
        return ApplicationError(f"{detail}: credentials rejected", type=UPSTREAM_AUTH_REJECTED)
    if code == 429 or code >= 500 or code == 408:
        return ApplicationError(detail, type=UPSTREAM_UNAVAILABLE)
    return ApplicationError(detail, type=UPSTREAM_REJECTED, non_retryable=True)


def http_failure(
    system: str, response: httpx.Response, fix: str, subject: str | None = None
) -> ApplicationError:
    """`from_http_response`, with a non-retryable answer made an operator's block with `fix`
    (a 4xx no retry can fix is a wrong URL or data the system refuses)."""
    err = from_http_response(system, response)
    if err.non_retryable:
        return needs_operator(err.message, fix, subject=subject)
    return err
