"""A crew answer (an update) that reaches a worker which has just come up, in the same workflow
task as the invitations' results, while a status loop queries the booking: the history the
booking writes replays. Without `RunAheadGuard` it sometimes did not (about one run in five
under load): a status query that waited while no booking worker polled was served first by the
new worker, with the invitations' results in its history; the SDK's core applied them while
answering, the loop's commands waited, and the answer was accepted after them, while every
replay accepts it first (`charters.worker.run_ahead`, `charters_dev.sdk_query_run_ahead`)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle, WorkflowUpdateStage
from temporalio.worker import Worker

from charters import contract
from charters.codec import data_converter
from charters.contract import Activity
from charters.models import CrewConfirmation, Verdict
from charters.worker.replay import HistoryReplay
from charters.worker.runner import apply_activation_jobs_together, worker_runner
from charters.workflows.charter_booking import CharterBookingWorkflow
from tests.workflow_harness import live_harness, until


async def watch_status(handle: WorkflowHandle[Any, Any]) -> None:
    """What an operator's `charters status` loop does: a query every few milliseconds."""
    while True:
        with contextlib.suppress(Exception):
            await handle.query(contract.QUERY_STATUS)
        await asyncio.sleep(0.01)


async def test_an_answer_with_results_on_a_new_worker_replays(
    tmp_path: Path,
) -> None:
    async with live_harness() as wf:
        world = wf.world
        invitations = world.hold(Activity.SEND_CREW_EMAIL, times=3)
        slow = world.hold(Activity.REDACT_SCC_REVENUE)
        data = await wf.charter()
        # The activities run on a worker of their own (its own client: one worker per task queue
        # and client), so the invitations finish while no booking worker is up.
        other = await Client.connect(
            wf.client.service_client.config.target_host,
            namespace=wf.client.namespace,
            data_converter=wf.client.data_converter,
        )
        activities = Worker(
            other,
            task_queue=wf.settings.task_queue,
            activities=world.activities(),
            graceful_shutdown_timeout=timedelta(seconds=1),
        )

        def booking_worker() -> Worker:
            return apply_activation_jobs_together(
                Worker(
                    wf.client,
                    task_queue=wf.settings.task_queue,
                    workflows=[CharterBookingWorkflow],
                    workflow_runner=worker_runner("sandboxed"),
                    graceful_shutdown_timeout=timedelta(seconds=1),
                )
            )

        async with activities:
            async with booking_worker():
                handle = await wf.book(data)
                watching = asyncio.ensure_future(watch_status(handle))
                await slow.started()
                await asyncio.sleep(9.0)  # past the workflow task's heartbeat (80 % of 10 s)
                slow.release()
                await invitations.started()
                await until(lambda: world.calls[Activity.SEND_CREW_EMAIL] >= 3, "3 invitations")
            try:
                invitations.release()
                await asyncio.sleep(1.0)
                answer = asyncio.ensure_future(
                    handle.start_update(
                        contract.UPDATE_CREW_CONFIRMATION,
                        CrewConfirmation(crew_id="crew-1", decision="accept", by="crew"),
                        wait_for_stage=WorkflowUpdateStage.ACCEPTED,
                        result_type=Verdict,
                    )
                )
                await asyncio.sleep(1.0)
                async with booking_worker():
                    verdict = await (await asyncio.wait_for(answer, 60)).result()
            finally:
                watching.cancel()
        assert verdict.recorded, verdict
        history = await handle.fetch_history()
    failure = await HistoryReplay(data_converter(None)).failure(history)
    if failure is not None:
        kept = tmp_path / "history.json"
        kept.write_text(history.to_json())
        raise AssertionError(f"{failure} (history: {kept})")
