"""One classification of botocore errors for every activity: what a retry can fix (throttling,
5xx, timeouts, connection failures, an update still in progress) stays retryable; what only a
person can fix (a wrong name in settings, a missing permission, an address SES refuses) becomes
`errors.needs_operator` with the fix, so the workflow blocks the step and says why."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from botocore.exceptions import BotoCoreError, ClientError
from temporalio.exceptions import ApplicationError

from charters import errors

# Codes (without a trailing "Exception") a retry can fix. A 429 or any 5xx is retryable whatever
# its code. The list follows botocore's own retry rules (`botocore/data/_retry.json`: throttling
# and transient errors) plus service codes that clear by themselves.
RETRYABLE_CODES = frozenset(
    {
        "Throttling",
        "Throttled",
        "TooManyRequests",
        "RequestLimitExceeded",
        "RequestThrottled",
        "SlowDown",
        "ProvisionedThroughputExceeded",
        "TransactionInProgress",
        "RequestTimeout",
        "PriorRequestNotComplete",
        "ServiceUnavailable",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "ServiceFailure",
        "TooManyInvalidationsInProgress",  # CloudFront: clears as invalidations finish
        "ResourceConflict",  # Lambda: an update is still in progress
        "ExpiredToken",  # credentials are refreshed by the next attempt
        "RequestExpired",
        "IDPCommunicationError",
    }
)

# A fix sentence for codes any service may answer; services add their own (see `FIXES_*`).
COMMON_FIXES: Mapping[str, str] = {
    "AccessDenied": "grant the worker's IAM role the permission named in the message",
    "UnauthorizedOperation": "grant the worker's IAM role the permission named in the message",
    "UnrecognizedClient": "check the worker's AWS credentials (region and account)",
    "InvalidClientTokenId": "check the worker's AWS credentials (region and account)",
    "InvalidSignature": "check the worker's AWS credentials and clock",
}

UNAVAILABLE_CONNECTION = "connection"

# A fix: the sentence itself, or a function of the service's error message giving it (one code
# can mean two things, e.g. SES `AccessDenied`: a sandbox recipient or a missing grant).
FixText = str | Callable[[str], str]


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "Unknown")).removesuffix("Exception")


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def is_retryable(exc: BaseException) -> bool:
    """Retryable: throttling, 5xx, timeouts and connection failures (any BotoCoreError that is
    not a ClientError: endpoint unreachable, read/connect timeout, connection closed)."""
    if isinstance(exc, ClientError):
        code = _code(exc)
        return code in RETRYABLE_CODES or _status(exc) == 429 or _status(exc) >= 500
    return isinstance(exc, BotoCoreError)


def classify(
    exc: BaseException,
    system: str,
    fixes: Mapping[str, FixText],
    default_fix: str,
    subject: str | None = None,
) -> ApplicationError:
    """The ApplicationError for a botocore failure, short (no chained traceback: it enters
    history). `fixes` maps error codes (without "Exception") to the sentence telling an operator
    what to change; `default_fix` names the setting to check for any other permanent error."""
    if not isinstance(exc, ClientError):
        return ApplicationError(
            f"{system} unreachable: {type(exc).__name__}", type=errors.UPSTREAM_UNAVAILABLE
        )
    code = _code(exc)
    message = str(exc.response.get("Error", {}).get("Message", ""))[:300]
    detail = f"{system} answered {code} (HTTP {_status(exc)}): {message}"
    if is_retryable(exc):
        return ApplicationError(detail, type=errors.UPSTREAM_UNAVAILABLE)
    given = fixes.get(code)
    fix = (given(message) if callable(given) else given) or COMMON_FIXES.get(code) or default_fix
    return errors.needs_operator(detail, fix, subject=subject)


@contextmanager
def aws_errors(
    system: str,
    fixes: Mapping[str, FixText],
    default_fix: str,
    subject: str | None = None,
) -> Iterator[None]:
    """Runs a block of AWS calls; a botocore failure leaves it classified (see `classify`)."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise classify(exc, system, fixes, default_fix, subject) from None
