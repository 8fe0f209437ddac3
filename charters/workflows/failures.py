"""How the booking says no, and what a step's failure for good means to it: a validator's
refusal (the update is rejected, nothing enters history), and for a step one line of cause, the
fix the activity named (`errors.needs_operator`) and its type, whatever kind of activity failed."""

from __future__ import annotations

from temporalio.exceptions import ActivityError, ApplicationError, FailureError

from charters import errors


def refuse(code: str, message: str) -> ApplicationError:
    """A validator's refusal: the update is rejected and nothing enters history."""
    return ApplicationError(message, type=code, non_retryable=True)


class StepFailure(Exception):
    """An activity failed for good: a permanent error, or its retry budget spent."""

    def __init__(
        self, cause: str, fix: str | None, error_type: str | None, message: str = ""
    ) -> None:
        super().__init__(cause)
        self.cause = cause
        self.fix = fix
        self.error_type = error_type
        self.message = message or cause


def failure_of(err: FailureError) -> StepFailure:
    """One line of cause, the fix the activity named (errors.needs_operator) and its type."""
    cause: BaseException | None = err
    while isinstance(cause, ActivityError) and cause.cause is not None:
        cause = cause.cause
    fix = None
    error_type = None
    message = ""
    if isinstance(cause, ApplicationError):
        error_type = cause.type
        message = cause.message
        if cause.type == errors.NEEDS_OPERATOR and cause.details:
            detail = cause.details[0]
            if isinstance(detail, dict):
                fix = detail.get("fix")
        text = cause.message
        if cause.type and cause.type not in text:
            text = f"{text} ({cause.type})"
    elif cause is not None:
        text = str(cause) or type(cause).__name__
    else:
        text = str(err)
    if "timeout" in text.lower() or "Timeout" in type(cause).__name__:
        text = f"{text}: retries spent without success"
    return StepFailure(
        text.splitlines()[0][:300] if text else "unknown error", fix, error_type, message
    )
