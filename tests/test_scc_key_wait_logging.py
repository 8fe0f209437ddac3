"""The SCC key wait polls for days at a time: each poll must log one line, not a traceback. Run
through a real worker on the test server, against moto's Lambda with SERVICE_KEY_HASH missing;
a failure of the ordinary category beside it shows what the worker logs otherwise."""

from __future__ import annotations

import logging
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from charters.activities.scc_lambda import SccLambdaActivities
from charters.activities.secrets import SecretReader
from tests.aws_moto import client, create_function, settings_for
from tests.aws_moto import moto_url as moto_url
from tests.standins_live import unique_names

TEST_SERVER = Path(sys.executable).parent / "temporal-test-server"
POLLS = 2


@activity.defn(name="ordinary_failure")
def ordinary_failure() -> None:
    raise ApplicationError("an ordinary failure")


@workflow.defn(sandboxed=False)
class WaitForKey:
    @workflow.run
    async def run(self) -> list[str]:
        outcomes = []
        for name, attempts in (("await_scc_service_key", POLLS), ("ordinary_failure", 1)):
            try:
                await workflow.execute_activity(
                    name,
                    start_to_close_timeout=timedelta(seconds=10),
                    retry_policy=RetryPolicy(
                        initial_interval=timedelta(milliseconds=100), maximum_attempts=attempts
                    ),
                )
                outcomes.append("ok")
            except ActivityError as err:
                assert isinstance(err.cause, ApplicationError)
                outcomes.append(err.cause.message)
        return outcomes


async def test_a_poll_logs_one_line_and_no_traceback(
    moto_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(moto_url, tmp_path, **unique_names())
    client(settings, "secretsmanager").create_secret(
        Name=settings.secret_scc_service_key, SecretString="the-key"
    )
    create_function(settings, settings.scc_lambda_function, {"OTHER": "x"})
    acts = SccLambdaActivities(
        client(settings, "lambda"),
        SecretReader(client(settings, "secretsmanager")),
        settings.scc_lambda_function,
        settings.secret_scc_service_key,
    )
    caplog.set_level(logging.INFO)
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(TEST_SERVER), data_converter=pydantic_data_converter
    )
    try:
        queue = f"key-wait-{uuid.uuid4().hex[:8]}"
        with ThreadPoolExecutor(2) as pool:
            async with Worker(
                env.client,
                task_queue=queue,
                workflows=[WaitForKey],
                activities=[acts.await_scc_service_key, ordinary_failure],
                activity_executor=pool,
                workflow_runner=UnsandboxedWorkflowRunner(),
            ):
                outcomes = await env.client.execute_workflow(
                    WaitForKey.run, id=f"key-wait-{uuid.uuid4().hex[:8]}", task_queue=queue
                )
    finally:
        await env.shutdown()

    assert outcomes == ["SERVICE_KEY_HASH on the SCC Lambda is missing", "an ordinary failure"]
    polls = [r for r in caplog.records if "polling again" in r.getMessage()]
    assert len(polls) == POLLS and all(r.levelno == logging.INFO for r in polls)
    assert all(r.exc_info is None for r in polls)

    def traced(activity_type: str) -> list[logging.LogRecord]:
        return [
            r
            for r in caplog.records
            if r.exc_info and r.levelno >= logging.INFO and activity_type in r.getMessage()
        ]

    assert traced("await_scc_service_key") == []
    assert traced("ordinary_failure")  # the worker's usual warning, with its traceback
