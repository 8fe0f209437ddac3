"""A query served to a worker that has just come up, after the workflow's activity completed and
before the update that came with it: without the guard the SDK applies the result while
answering the query and the history stops replaying (`charters_dev.sdk_query_run_ahead`); with
it the query is refused, the run replayed from its history by the next workflow task, and every
history replays. Which task the worker takes first is the server's choice, so the test tries
until the query came first at least once."""

from __future__ import annotations

import pytest
from charters_dev.sdk_query_run_ahead import RUNNER, one_try
from charters_dev.stack import temporal_binary
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from charters.worker.run_ahead import RunAheadGuard

TRIES = 12


@pytest.mark.timeout(240)
async def test_a_query_never_runs_the_workflow_ahead_of_its_history() -> None:
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=temporal_binary())
    outcomes: list[tuple[str, str | None]] = []
    async with env:
        target = env.client.service_client.config.target_host
        activities_client = await Client.connect(target, namespace=env.client.namespace)
        for _ in range(TRIES):
            outcomes.append(await one_try(env.client, activities_client, RunAheadGuard(RUNNER)))
            if any(served == "refused" for served, _ in outcomes):
                break
    assert [failure for _, failure in outcomes if failure] == [], outcomes
    assert any(served == "refused" for served, _ in outcomes), outcomes
