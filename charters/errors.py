"""Error types the workflow reasons about. Non-retryable means a retry cannot fix it."""

from __future__ import annotations

from typing import Any

import httpx
from temporalio.exceptions import ApplicationError

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


def invalid_booking(message: str) -> ApplicationError:
    return ApplicationError(message, type=INVALID_BOOKING, non_retryable=True)


def needs_operator(message: str, fix: str, subject: str | None = None) -> ApplicationError:
    """A permanent error with the fix a person must apply; `subject` names what it concerns (a
    crew member id, a distribution id), shown in `status` and the alert."""
    return ApplicationError(
        message, {"fix": fix, "subject": subject}, type=NEEDS_OPERATOR, non_retryable=True
    )


def send(http: httpx.Client, system: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """One HTTP call. A connection-level failure (reset, refused, timeout) becomes a short,
    retryable `UpstreamUnavailable` with no chained traceback: httpx's chain can exceed the
    failure size the server accepts into history."""
    try:
        return http.request(method, url, **kwargs)
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
