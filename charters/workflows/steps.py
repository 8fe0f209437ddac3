"""How the booking calls an activity, and what happens when one fails for good.

`call` is the one way to run an activity: a regular activity (or, with the opt-in local-first
steps, a local one first for short idempotent steps), always cancelled with
WAIT_CANCELLATION_COMPLETED so a cancelled step's outcome is known before anything else runs. A
permanent failure arrives as `StepFailure`, a cancel as `asyncio.CancelledError`, whatever kind
of activity it was.

`run` wraps `call` in a step: `running`/`done` in status, and when the step fails for good it
blocks: `BlockedOn=<step>`, the cause and the fix in `status`, one alert, then it waits for an
operator's `resolve_block` (retry or skip). A cancel ends the wait like any other await."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    FailureError,
    is_cancelled_exception,
)
from temporalio.workflow import ActivityCancellationType

from charters import contract
from charters.contract import Activity
from charters.models import (
    BookingOptions,
    BookingState,
    EmailSent,
    OperationsAlertRequest,
    ResolveBlock,
)
from charters.workflows.bookkeeping import Bookkeeping
from charters.workflows.errands import Errands
from charters.workflows.failures import StepFailure, failure_of

T = TypeVar("T")

# The local fast path: a step's first attempts run inside the workflow task (one marker event, no
# activity task), each with the step's whole start-to-close, so an attempt's deadline and every
# request's timeout are the same as a regular attempt's (`charters.activities.deadline`). When they
# are spent the step goes on as a regular activity. An update or cancel that arrives meanwhile is
# taken at the workflow task's next heartbeat at the latest (80 % of its timeout).
LOCAL_ATTEMPTS = 2
LOCAL_RETRY_INITIAL_SECONDS = 0.5

# Sends that only the effect ledger keeps from repeating (SES and SNS take no idempotency key) run
# as regular activities: each runs in an errand beside others, and a regular activity's result is
# an event of its own, so a send that blocks changes status at a point a replay meets the same way.
LEDGER_SENDS = frozenset(
    {
        Activity.SEND_CREW_EMAIL,
        Activity.SEND_GUEST_EMAIL,
        Activity.SEND_CAPTAIN_SUMMARY,
        Activity.SEND_CREW_SMS,
        Activity.ALERT_OPERATIONS,
    }
)
ALERT_ROUNDS = 3


def _task_stopped() -> bool:
    """The task running this step was asked to stop (`Task.cancel`), whatever it got back."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class StepRunner:
    """Owns the blocks that wait for a person (`status.blocks`, and who waits under each) and the
    alerts (`state.alerted`)."""

    def __init__(
        self,
        state: BookingState,
        book: Bookkeeping,
        options: BookingOptions,
        workflow_id: str,
        alerts: Errands,
        on_change: Callable[[], None],
    ) -> None:
        self._state = state
        self._book = book
        self._options = options
        self._workflow_id = workflow_id
        self._alerts = alerts
        self._on_change = on_change
        self._waiting: dict[str, str | None] = {}
        self._waiters: dict[str, int] = {}
        self._answers_given: dict[str, int] = {}
        self._answers: dict[str, str] = {}
        self.compensating = False
        self.local_in_flight = 0
        self._local_lane = asyncio.Lock()

    # ---- one way to call an activity ---------------------------------------------------------

    async def call(
        self,
        activity: Activity,
        request: Any,
        result_type: type[T] | None = None,
        *,
        local: bool = True,
        non_retryable: list[str] | None = None,
        timeout: float | None = None,
        heartbeat: float | None = None,
        retry: RetryPolicy | None = None,
        budget: timedelta | None = None,
        cancellable: bool = True,
    ) -> T:
        """Run `activity` with `request` until it succeeds; its result, typed. Short steps (no
        heartbeat) go local-first when the options allow and `local` does: a step whose repeat
        is safe only one attempt at a time passes False. `cancellable=False`: a booking's cancel
        does not stop it (an alert to operations)."""
        start_to_close = timedelta(seconds=timeout or self._options.activity_timeout_seconds)
        args = [request] if request is not None else []
        try:
            if (
                local
                and not heartbeat
                and self._options.local_activities
                and activity not in LEDGER_SENDS
            ):
                done, result = await self._local_attempts(
                    activity, args, result_type, start_to_close, non_retryable, cancellable
                )
                if done:
                    return result  # type: ignore[return-value]
            result = await workflow.execute_activity(
                activity,
                args=args,
                result_type=result_type,
                start_to_close_timeout=start_to_close,
                schedule_to_close_timeout=budget
                or timedelta(seconds=self._options.step_retry_budget_seconds),
                heartbeat_timeout=timedelta(seconds=heartbeat) if heartbeat else None,
                cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                summary=contract.ACTIVITY_SUMMARIES.get(activity),
                retry_policy=retry
                or RetryPolicy(
                    initial_interval=timedelta(seconds=1),
                    maximum_interval=timedelta(seconds=self._options.activity_max_interval_seconds),
                    non_retryable_error_types=non_retryable,
                ),
            )
        except FailureError as err:
            if is_cancelled_exception(err):
                raise asyncio.CancelledError() from err
            if cancellable:
                # An attempt that fails after a cancel was asked for is not retried by the
                # server (retry state CANCEL_REQUESTED): it is the cancel, not a failure to block.
                self.cancel_point()
            raise failure_of(err) from err
        if cancellable:
            self.cancel_point()
        return result  # type: ignore[no-any-return]

    async def _local_attempts(
        self,
        activity: Activity,
        args: list[Any],
        result_type: type[Any] | None,
        start_to_close: timedelta,
        non_retryable: list[str] | None,
        cancellable: bool,
    ) -> tuple[bool, Any]:
        """A few attempts inside the workflow task (no activity task, one marker). Every such
        step is idempotent by its own key, so when they are spent the step goes on as a regular
        activity with the whole budget; a permanent error ends it at once.

        One local activity at a time (`_local_lane`): concurrent local activities resolved in
        one activation replay in another order than they ran (temporalio/sdk-python#1578, open),
        and a booking evicted or moved to another worker then fails its workflow task for good.
        `local_in_flight` counts the running and the queued: the main loop starts no timer
        meanwhile (see `CharterBookingWorkflow._until_departure`)."""
        self.local_in_flight += 1
        try:
            async with self._local_lane:
                result = await workflow.execute_local_activity(
                    activity,
                    args=args,
                    result_type=result_type,
                    start_to_close_timeout=start_to_close,
                    cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                    summary=contract.ACTIVITY_SUMMARIES.get(activity),
                    retry_policy=RetryPolicy(
                        initial_interval=timedelta(seconds=LOCAL_RETRY_INITIAL_SECONDS),
                        maximum_attempts=LOCAL_ATTEMPTS,
                        non_retryable_error_types=non_retryable,
                    ),
                )
        except FailureError as err:  # a local activity's failure arrives as its cause itself
            if is_cancelled_exception(err):
                raise asyncio.CancelledError() from err
            failure: BaseException = (
                err.cause if isinstance(err, ActivityError) and err.cause else err
            )
            if cancellable:
                self.cancel_point()
            if isinstance(failure, ApplicationError) and (
                failure.non_retryable or failure.type in (non_retryable or [])
            ):
                raise failure_of(err) from err
            if cancellable:
                self.cancel_point()
            return False, None
        finally:
            self.local_in_flight -= 1
            self._on_change()
        if cancellable:
            self.cancel_point()
        return True, result

    def _cancel_requested(self) -> bool:
        return self._state.requests.cancel is not None and not self.compensating

    def cancel_point(self) -> None:
        """Where a requested cancel is seen: after every activity (the SDK hands a cancelled
        step's result back when the activity finished anyway) and before every step. Besides the
        booking's cancel, the calling task's own: a group or the loop that stopped this step
        (a reschedule stopping the errands) gets an activity that failed rather than heard the
        cancel (a sync attempt cannot), and that failure is the stop, not a block."""
        if self._cancel_requested() or _task_stopped():
            raise asyncio.CancelledError()

    # ---- a step that blocks for a person ------------------------------------------------------

    async def run(
        self,
        step: str,
        activity: Activity,
        request: Any,
        result_type: type[T] | None = None,
        *,
        block_on: str | None = None,
        skippable: str | None = None,
        fix: str | None = None,
        about: str | None = None,
        local: bool = True,
        non_retryable: list[str] | None = None,
        timeout: float | None = None,
        heartbeat: float | None = None,
    ) -> T | None:
        """Run the activity as `step` until it succeeds, or an operator skips it (only where
        `skippable` says why that is safe; then None). `block_on` names the block (unique per
        concurrent step: it is what `charters retry --step` takes)."""
        on = block_on or step.replace("_", "-")
        while True:
            self.cancel_point()
            self._book.step(step, "running")
            try:
                result = await self.call(
                    activity,
                    request,
                    result_type,
                    local=local,
                    non_retryable=non_retryable,
                    timeout=timeout,
                    heartbeat=heartbeat,
                )
            except StepFailure as failure:
                action = await self.block(
                    step, on, failure, skippable=skippable, fix=fix, about=about
                )
                if action == "skip":
                    self._book.step(step, "skipped")
                    return None
                continue
            self._book.step(step, "done")
            return result

    async def block(
        self,
        step: str,
        on: str,
        failure: StepFailure,
        *,
        skippable: str | None = None,
        fix: str | None = None,
        about: str | None = None,
    ) -> str:
        """Show the block, alert once for it, wait for the operator's answer (`retry`/`skip`)."""
        command = fix or failure.fix or "see the activity's failure in the Web UI"
        resolve = f"charters retry {self._workflow_id} --step {on}"
        self._book.step(step, "blocked")
        self._book.block(
            on,
            f"{step}{f' ({about})' if about else ''} failed for good: {failure.cause}",
            f"{command}; then `{resolve}`"
            + (f" (or `{resolve} --skip`: {skippable})" if skippable else ""),
        )
        count = self._state.block_counts.get(on, 0) + 1
        self._state.block_counts[on] = count
        asked_before = self._answers_given.get(on, 0)
        self._waiting[on] = skippable
        self._waiters[on] = self._waiters.get(on, 0) + 1
        self._on_change()  # the process re-reads what a block changes (a seat waiting: the stage)
        self.alert(
            f"blocked:{on}:{count}",
            f"{self._state.status.booking_ref}: {step} needs a person",
            f"{step} failed for good: {failure.cause}\nFix: {command}\nThen: {resolve}",
        )
        try:
            await workflow.wait_condition(
                lambda: self._answers_given.get(on, 0) > asked_before or self._cancel_requested()
            )
        except asyncio.CancelledError:
            self._stop_waiting(on)
            raise
        self._stop_waiting(on)
        self.cancel_point()
        return self._answers[on]

    def _stop_waiting(self, on: str) -> None:
        """Not in a `finally`: a coroutine dropped at eviction must not touch the workflow."""
        self._waiters[on] -= 1
        if not self._waiters[on]:
            del self._waiters[on]
            self._waiting.pop(on, None)
            self._book.unblock(on)

    def waiting(self, on: str) -> bool:
        return on in self._waiting

    def release(self, on: str) -> None:
        """Skip whatever waits under `on` because what it was for is moot (a member replaced,
        or the same member with new details: a new invitation goes instead)."""
        if on in self._waiting:
            self._answer(on, "skip")

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
        self._answer(on, answer.action)
        return on

    def _answer(self, on: str, action: str) -> None:
        """Every step waiting under `on` takes the answer (two errands may wait under one name:
        a seat's old and new invitation)."""
        self._answers_given[on] = self._answers_given.get(on, 0) + 1
        self._answers[on] = action

    # ---- alerts -------------------------------------------------------------------------------

    def alert(self, key: str, subject: str, body: str) -> None:
        """Tell operations once per key, beside whatever the booking does next (a block accepts
        the operator's answer while its alert is still going out). The key is kept once the
        alert is sent, so continue-as-new does not repeat it; a send that fails is tried again a
        few times, then noted."""
        if key in self._state.alerted:
            return
        request = OperationsAlertRequest(
            idempotency_key=f"{self._workflow_id}:alert:{key}", subject=subject, body=body
        )
        self._alerts.start(f"alert:{key}", lambda: self._send_alert(key, request))

    async def _send_alert(self, key: str, request: OperationsAlertRequest) -> None:
        for attempt in range(ALERT_ROUNDS):
            try:
                await self.call(
                    Activity.ALERT_OPERATIONS, request, EmailSent, local=False, cancellable=False
                )
            except StepFailure as failure:
                if attempt + 1 == ALERT_ROUNDS:
                    self._book.note(f"could not alert operations ({request.subject}): {failure}")
                    return
                await workflow.sleep(timedelta(minutes=5 * (attempt + 1)))
                continue
            self._state.alerted.append(key)
            return
