"""Error types the workflow reasons about. Non-retryable means a retry cannot fix it."""

from __future__ import annotations

import httpx
from temporalio.exceptions import ApplicationError

INVALID_BOOKING = "InvalidBooking"
SCC_AUTH_REJECTED = "SccAuthRejected"
SCC_HEADER_STRIPPED = "SccAuthHeaderStripped"
UPSTREAM_REJECTED = "UpstreamRejected"
UPSTREAM_UNAVAILABLE = "UpstreamUnavailable"
REDACTION_UNVERIFIED = "RedactionUnverified"


def invalid_booking(message: str) -> ApplicationError:
    return ApplicationError(message, type=INVALID_BOOKING, non_retryable=True)


def from_http_response(system: str, response: httpx.Response) -> ApplicationError:
    """Classify a failed HTTP answer: throttling and 5xx retry, other 4xx do not."""
    code = response.status_code
    detail = (
        f"{system} answered HTTP {code} to {response.request.method} {response.request.url.path}"
    )
    if code == 429 or code >= 500 or code == 408:
        return ApplicationError(detail, type=UPSTREAM_UNAVAILABLE)
    return ApplicationError(detail, type=UPSTREAM_REJECTED, non_retryable=True)
