"""Runs one step of the booking: an activity with its own timeouts, retried on its own policy
while the fault is transient; when it fails for good (a permanent error, or its retry budget
spent) the step blocks: `BlockedOn=<step>`, the cause and the fix in `status`, one alert to
operations, then it waits for an operator's `resolve_block` (retry or skip) or a cancel."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    FailureError,
    RetryState,
    is_cancelled_exception,
)

from charters import contract, errors
from charters.models import BookingOptions, BookingState, OperationsAlertRequest, ResolveBlock
from charters.workflows.bookkeeping import Bookkeeping

with workflow.unsafe.imports_passed_through():
    from charters.activities.email import EmailActivities

T = TypeVar("T")

# The local fast path: a few quick attempts absorb a throttle or a reset without a round trip
# through the server; anything longer goes on as a regular activity.
LOCAL_ATTEMPTS = 3
LOCAL_RETRY_INITIAL_SECONDS = 0.5

SUMMARIES = {
    "create_calendar_entry": "Create the JADA calendar entry",
    "update_calendar_entry": "Update the calendar entry",
    "check_scc_service_key": "Check SERVICE_KEY_HASH on the SCC Lambda",
    "await_scc_service_key": "Wait for SERVICE_KEY_HASH to be fixed (retries until it is)",
    "repair_scc_service_key_hash": "Repair SERVICE_KEY_HASH (operator approved)",
    "create_scc_event": "Create the crew event in ShipCaptainCrew",
    "update_scc_event": "Update the SCC event",
    "redact_scc_revenue": "Remove revenue from the SCC item",
    "publish_guest_page": "Publish the guest page to S3",
    "publish_photo_album": "Publish the photo album page to S3",
    "invalidate_guest_page": "Invalidate the guest page in CloudFront",
    "send_crew_email": "Email a crew member",
    "send_guest_email": "Email the guest",
    "alert_operations": "Alert operations",
    "send_captain_summary": "Send the captain's summary",
}


class BookingCancelled(Exception):
    """Raised inside the run to unwind to compensation."""


class StepRunner:
    def __init__(
        self, state: BookingState, book: Bookkeeping, options: BookingOptions, wf_id: str
    ) -> None:
        self._s = self.state = state
        self._book = self.book = book
        self._o = self.options = options
        self._wf_id = self.wf_id = wf_id
        self.compensating = False
        self._waiting: dict[str, str | None] = {}

    def activity(
        self,
        fn: Callable[..., Any],
        *args: Any,
        non_retryable: list[str] | None = None,
        timeout: float | None = None,
        heartbeat: float | None = None,
        budget: float | None = None,
        local: bool = True,
    ) -> Awaitable[Any]:
        """One activity: each attempt inside `timeout`, all of them inside the step's budget.
        A short step (no heartbeat) runs as a local activity first when the options say so,
        unless `local` is False: a step whose repeat is safe only one attempt at a time."""
        start_to_close = timedelta(seconds=timeout or self._o.activity_timeout_seconds)
        summary = SUMMARIES.get(getattr(fn, "__name__", ""))

        def remote() -> Awaitable[Any]:
            return workflow.execute_activity(
                fn,
                args=args,
                start_to_close_timeout=start_to_close,
                schedule_to_close_timeout=timedelta(
                    seconds=budget or self._o.step_retry_budget_seconds
                ),
                heartbeat_timeout=timedelta(seconds=heartbeat) if heartbeat else None,
                summary=summary,
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=1),
                    maximum_interval=timedelta(seconds=self._o.activity_max_interval_seconds),
                    non_retryable_error_types=non_retryable,
                ),
            )

        if heartbeat or not local or not self._o.local_activities:
            return remote()
        return self._local_first(fn, args, start_to_close, summary, non_retryable, remote)

    async def _local_first(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        start_to_close: timedelta,
        summary: str | None,
        non_retryable: list[str] | None,
        remote: Callable[[], Awaitable[Any]],
    ) -> Any:
        name = getattr(fn, "__name__", "activity")
        """The fast path: a local activity, retried a few times inside the same workflow task
        (no activity task, no round trip through the server, one marker event). Every step is
        idempotent (its own look-up, a natural key, or the effect ledger), so when the local
        attempts are spent the step goes on as a regular activity with the whole retry budget
        and the usual block; a permanent error blocks at once."""
        try:
            return await workflow.execute_local_activity(
                fn,
                args=args,
                start_to_close_timeout=start_to_close,
                summary=summary,
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=LOCAL_RETRY_INITIAL_SECONDS),
                    maximum_attempts=LOCAL_ATTEMPTS,
                    non_retryable_error_types=non_retryable,
                ),
            )
        except FailureError as err:  # a local activity's failure arrives as its cause itself
            if is_cancelled_exception(err):
                raise
            failure = err.cause if isinstance(err, ActivityError) else err
            if isinstance(failure, ApplicationError) and (
                failure.non_retryable or failure.type in (non_retryable or [])
            ):
                # permanent: block now, in the shape every caller knows, without another attempt
                raise ActivityError(
                    f"local activity {name} failed",
                    scheduled_event_id=0,
                    started_event_id=0,
                    identity="",
                    activity_type=name,
                    activity_id="",
                    retry_state=RetryState.NON_RETRYABLE_FAILURE,
                ) from failure
        return await remote()

    async def run(
        self,
        step: str,
        call: Callable[[], Awaitable[T]],
        *,
        block_on: str | None = None,
        skippable: str | None = None,
        fix: str | None = None,
        passthrough: list[str] | None = None,
        about: str | None = None,
    ) -> T | None:
        """Run `call` as `step` until it succeeds, or an operator skips it (only where
        `skippable` says why that is safe; then None)."""
        on = block_on or step.replace("_", "-")
        while True:
            self._book.step(step, "running")
            try:
                result = await call()
            except ActivityError as err:
                if isinstance(err.cause, CancelledError) or error_type(err) in (passthrough or []):
                    raise
                cause, fixed = describe(err)
                self._book.step(step, "blocked")
                command = fix or fixed or "see the activity's failure in the Web UI"
                resolve = f"charters retry {self._wf_id} --step {on}"
                self._book.block(
                    on,
                    f"{step}{f' ({about})' if about else ''} failed for good: {cause}",
                    f"{command}; then `{resolve}`"
                    + (f" (or `{resolve} --skip`: {skippable})" if skippable else ""),
                )
                self._waiting[on] = skippable  # an operator may answer while the alert goes out
                self._s.resolutions.pop(on, None)
                try:
                    await self.alert(
                        f"blocked:{on}:{self._s.round}",
                        f"{self._s.status.booking_ref}: {step} needs a person",
                        f"{step} failed for good: {cause}\nFix: {command}\nThen: {resolve}",
                    )
                    action = await self._resolution(on)
                finally:
                    self._waiting.pop(on, None)
                if action == "skip":
                    self._book.unblock(on)
                    self._book.step(step, "skipped")
                    return None
                self._book.unblock(on)
                continue
            self._book.step(step, "done")
            return result

    async def _resolution(self, on: str) -> str:
        await workflow.wait_condition(
            lambda: (
                on in self._s.resolutions or (self._s.cancel is not None and not self.compensating)
            )
        )
        if on not in self._s.resolutions:
            raise BookingCancelled()
        return self._s.resolutions.pop(on)

    def check_resolve(self, answer: ResolveBlock) -> None:
        """The validator of `resolve_block`: only a step that waits for a person, and a skip only
        where the step says skipping is safe."""
        if not self._waiting:
            raise ApplicationError(
                "no step is waiting for an operator", type=contract.REFUSED_NOT_BLOCKED
            )
        on = answer.step or next(iter(self._waiting))
        if on not in self._waiting:
            raise ApplicationError(
                f"{on} is not blocked; blocked: {', '.join(self._waiting)}",
                type=contract.REFUSED_NOT_BLOCKED,
            )
        if answer.action == "skip" and not self._waiting[on]:
            raise ApplicationError(
                f"{on} cannot be skipped: the booking depends on it; fix it and retry",
                type=contract.REFUSED_INVALID,
            )

    def resolve(self, answer: ResolveBlock) -> str:
        on = answer.step or next(iter(self._waiting))
        self._s.resolutions[on] = answer.action
        return on

    async def alert(self, key: str, subject: str, body: str) -> None:
        """Tell operations once per key (kept in state, so continue-as-new does not repeat it).
        An alert that cannot be sent is noted, never blocks the booking."""
        if key in self._s.alerted:
            return
        self._s.alerted.append(key)
        try:
            await self.activity(
                EmailActivities.alert_operations,
                OperationsAlertRequest(
                    idempotency_key=f"{self._wf_id}:alert:{key}", subject=subject, body=body
                ),
            )
        except ActivityError as err:
            if isinstance(err.cause, CancelledError):
                raise
            self._book.note(f"could not alert operations ({subject}): {describe(err)[0]}")


def describe(err: ActivityError) -> tuple[str, str | None]:
    """One line of cause, and the fix the activity named (errors.needs_operator), if any."""
    cause = err.cause
    while isinstance(cause, ActivityError) and cause.cause is not None:
        cause = cause.cause
    fix = None
    if isinstance(cause, ApplicationError):
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
    return text.splitlines()[0][:300] if text else "unknown error", fix


def error_type(err: ActivityError) -> str | None:
    cause = err.cause
    return cause.type if isinstance(cause, ApplicationError) else None


class Part:
    """A part of the booking's process: it shares the state, the bookkeeping and the runner."""

    def __init__(self, steps: StepRunner) -> None:
        self._steps = steps
        self._s = steps.state
        self._book = steps.book
        self._o = steps.options
        self._wf_id = steps.wf_id
