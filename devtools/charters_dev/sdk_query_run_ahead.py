"""The SDK failure behind bookings that stop replaying, in twenty lines of workflow, for an
upstream report: `python -m charters_dev.sdk_query_run_ahead [--tries N]`.

1. A workflow waits on an activity; no workflow worker polls (a deploy, a killed worker).
2. A query arrives. No workflow task is pending, so the server dispatches it directly to the
   task queue, where it waits for a poller.
3. The activity completes (a workflow task is scheduled) and an update arrives with it.
4. A worker comes up. When it takes the query first, its history already holds the activity's
   result: the SDK's core applies it and the workflow reacts (schedules `follow_up`) while only
   answering the query. The workflow task that follows carries the update, which the workflow
   then accepts after that command. Every replay applies the result and the update together and
   accepts the update first: `Nondeterminism error: Update machine does not handle this event:
   HistoryEvent(id: N, ActivityTaskScheduled)`.

Which task the new worker takes first is up to the server, so the failure shows in some tries
only: exactly those where the query was served before the update (4 of 8 tries on the dev
server, temporalio 1.35.0, Temporal CLI 1.9.1 / server 1.32.0)."""

from __future__ import annotations

import argparse
import asyncio
import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client, WorkflowHandle, WorkflowQueryFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner, Worker, WorkflowRunner

from charters.worker.run_ahead import RunAheadGuard

RUNNER = UnsandboxedWorkflowRunner()
released = asyncio.Event()


@activity.defn
async def slow_step() -> None:
    await released.wait()


@activity.defn
async def follow_up() -> None:
    return None


@workflow.defn
class AnswerAfterStep:
    def __init__(self) -> None:
        self.answers: list[str] = []

    @workflow.run
    async def run(self) -> None:
        await workflow.execute_activity(slow_step, start_to_close_timeout=timedelta(minutes=1))
        workflow.start_activity(follow_up, start_to_close_timeout=timedelta(minutes=1))
        await workflow.wait_condition(lambda: len(self.answers) > 1)

    @workflow.update
    async def answer(self, text: str) -> int:
        self.answers.append(text)
        return len(self.answers)

    @workflow.query
    def answered(self) -> int:
        return len(self.answers)


async def one_try(
    client: Client, activities_client: Client, runner: WorkflowRunner = RUNNER
) -> tuple[str, str | None]:
    """(when the query was served: `before` or `after` the update, or `refused` by the guard;
    the replay failure or None). `runner` runs the workflow on the worker that comes up."""
    released.clear()
    queue = f"run-ahead-{uuid.uuid4().hex[:8]}"
    activities = Worker(activities_client, task_queue=queue, activities=[slow_step, follow_up])
    async with activities:
        async with Worker(
            client,
            task_queue=queue,
            workflows=[AnswerAfterStep],
            workflow_runner=RUNNER,
            max_cached_workflows=0,
        ):
            handle: WorkflowHandle[AnswerAfterStep, None] = await client.start_workflow(
                AnswerAfterStep.run, id=queue, task_queue=queue
            )
            await asyncio.sleep(1.0)
        query = asyncio.ensure_future(handle.query(AnswerAfterStep.answered))
        await asyncio.sleep(0.5)
        released.set()
        await asyncio.sleep(1.0)
        update = asyncio.ensure_future(handle.execute_update(AnswerAfterStep.answer, "yes"))
        await asyncio.sleep(0.5)
        async with Worker(
            client, task_queue=queue, workflows=[AnswerAfterStep], workflow_runner=runner
        ):
            try:
                served = "before" if await asyncio.wait_for(query, 30) == 0 else "after"
            except WorkflowQueryFailedError:
                served = "refused"
            await asyncio.wait_for(update, 30)
            await asyncio.sleep(0.5)
        await handle.terminate("try over")
    history = await handle.fetch_history()
    replayed = await Replayer(workflows=[AnswerAfterStep], workflow_runner=RUNNER).replay_workflow(
        history, raise_on_replay_failure=False
    )
    failure = replayed.replay_failure
    return served, None if failure is None else " ".join(str(failure).split())[:300]


async def main(tries: int, guard: bool) -> int:
    from charters_dev.stack import temporal_binary

    env = await WorkflowEnvironment.start_local(dev_server_existing_path=temporal_binary())
    failed = 0
    async with env:
        target = env.client.service_client.config.target_host
        activities_client = await Client.connect(target, namespace=env.client.namespace)
        for number in range(1, tries + 1):
            runner = RunAheadGuard(RUNNER) if guard else RUNNER
            served, failure = await one_try(env.client, activities_client, runner)
            failed += failure is not None
            print(f"try {number}: query {served}; replay: {failure or 'ok'}", flush=True)
    print(f"histories that do not replay: {failed} of {tries}")
    return failed


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=12)
    parser.add_argument("--guard", action="store_true", help="run the worker with RunAheadGuard")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.tries, arguments.guard))
