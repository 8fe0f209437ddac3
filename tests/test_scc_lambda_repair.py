"""The SCC key repair against Lambda as the API reference documents it (RevisionId, update
status, aliases), on moto made faithful where it is not (tests/aws_moto.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from charters import errors
from charters.activities.scc_lambda import HASH_VARIABLE, SccLambdaActivities, service_key_hash
from charters.activities.secrets import SecretReader
from tests.aws_moto import client, create_function, faithful_lambda, moto_url, settings_for

__all__ = ["moto_url"]
KEY = "the-scc-service-key"
OTHERS = {"TABLE_NAME": "scc-events", "STAGE": "prod"}


@pytest.fixture
def setup(moto_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, Any]:
    settings = settings_for(moto_url, tmp_path)
    name = f"scc-{request.node.name[:40].replace('_', '-')}"
    create_function(settings, name, dict(OTHERS))
    sm = client(settings, "secretsmanager")
    secret = f"{name}/key"
    sm.create_secret(Name=secret, SecretString=KEY)
    return {
        "settings": settings,
        "name": name,
        "secret": secret,
        "lambda": client(settings, "lambda"),
    }


def activities(setup: dict[str, Any], **kwargs: Any) -> SccLambdaActivities:
    secrets = SecretReader(client(setup["settings"], "secretsmanager"))
    return SccLambdaActivities(setup["lambda"], secrets, setup["name"], setup["secret"], **kwargs)


def variables(setup: dict[str, Any], qualifier: str | None = None) -> dict[str, str]:
    extra = {"Qualifier": qualifier} if qualifier else {}
    config = setup["lambda"].get_function_configuration(FunctionName=setup["name"], **extra)
    return dict(config["Environment"]["Variables"])


def test_a_change_deployed_between_read_and_write_survives_the_repair(
    setup: dict[str, Any],
) -> None:
    """Another deploy adds a variable after the repair has read the configuration: the repair's
    write (with the RevisionId it read) is refused, it reads again, and both changes remain."""
    deployer = client(setup["settings"], "lambda")
    deployed: list[bool] = []

    def concurrent_deploy(**_: Any) -> None:
        if not deployed:
            deployed.append(True)
            current = variables(setup)
            deployer.update_function_configuration(
                FunctionName=setup["name"],
                Environment={"Variables": {**current, "FEATURE_FLAG": "on"}},
            )

    setup["lambda"].meta.events.register(
        "before-call.lambda.UpdateFunctionConfiguration", concurrent_deploy
    )
    try:
        with faithful_lambda() as seen:
            result = ActivityEnvironment().run(activities(setup).repair_scc_service_key_hash)
    finally:
        setup["lambda"].meta.events.unregister(
            "before-call.lambda.UpdateFunctionConfiguration", concurrent_deploy
        )
    assert result.ok
    assert seen["stale_writes"] == 1
    assert variables(setup) == {
        **OTHERS,
        "FEATURE_FLAG": "on",
        HASH_VARIABLE: service_key_hash(KEY),
    }


def test_repair_waits_out_an_update_in_progress_heartbeating(setup: dict[str, Any]) -> None:
    """A deploy is still in progress when the repair starts, and the repair's own update is in
    progress for a while: it waits (boto3's function_updated_v2 waiter) and heartbeats."""
    beats: list[Any] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: beats.append(details)
    with faithful_lambda(in_progress_reads=2) as seen:
        setup["lambda"].update_function_configuration(
            FunctionName=setup["name"], Environment={"Variables": {**OTHERS, "STAGE": "prod2"}}
        )
        result = env.run(activities(setup, wait_seconds=20).repair_scc_service_key_hash)
    assert result.ok
    assert seen["in_progress_answers"] == 4  # two after the deploy, two after the repair
    assert beats, "no heartbeat while waiting"
    assert variables(setup) == {**OTHERS, "STAGE": "prod2", HASH_VARIABLE: service_key_hash(KEY)}


def test_an_update_that_never_finishes_is_retried_not_waited_past_the_attempt(
    setup: dict[str, Any],
) -> None:
    with faithful_lambda(in_progress_reads=10_000):
        setup["lambda"].update_function_configuration(
            FunctionName=setup["name"], Environment={"Variables": dict(OTHERS)}
        )
        with pytest.raises(ApplicationError) as raised:
            ActivityEnvironment().run(activities(setup, wait_seconds=2).repair_scc_service_key_hash)
    assert raised.value.type == errors.UPSTREAM_UNAVAILABLE and not raised.value.non_retryable
    assert HASH_VARIABLE not in variables(setup)


def test_a_failed_update_is_an_operator_error_not_done(setup: dict[str, Any]) -> None:
    with (
        faithful_lambda(in_progress_reads=10_000, status="Failed"),
        pytest.raises(ApplicationError) as raised,
    ):
        ActivityEnvironment().run(activities(setup).repair_scc_service_key_hash)
    assert raised.value.type == errors.NEEDS_OPERATOR and raised.value.non_retryable
    assert "EniLimitExceeded" in raised.value.message


def test_with_an_alias_the_repair_publishes_a_version_and_moves_the_alias(
    setup: dict[str, Any],
) -> None:
    """The SCC API invokes alias `live` (version 1, no hash): the check looks at the alias, and
    the repair publishes a version carrying the hash and points the alias at it."""
    lam = setup["lambda"]
    first = lam.publish_version(FunctionName=setup["name"])["Version"]
    lam.create_alias(FunctionName=setup["name"], Name="live", FunctionVersion=first)
    acts = activities(setup, qualifier="live")
    assert ActivityEnvironment().run(acts.check_scc_service_key).reason == "missing"

    with faithful_lambda():
        result = ActivityEnvironment().run(acts.repair_scc_service_key_hash)

    assert result.ok
    alias = lam.get_alias(FunctionName=setup["name"], Name="live")
    assert alias["FunctionVersion"] != first
    assert variables(setup, "live") == {**OTHERS, HASH_VARIABLE: service_key_hash(KEY)}


def test_the_repair_will_not_publish_someone_elses_unreleased_change(
    setup: dict[str, Any],
) -> None:
    lam = setup["lambda"]
    first = lam.publish_version(FunctionName=setup["name"])["Version"]
    lam.create_alias(FunctionName=setup["name"], Name="live", FunctionVersion=first)
    lam.update_function_configuration(
        FunctionName=setup["name"], Environment={"Variables": {**OTHERS, "STAGE": "next"}}
    )
    with pytest.raises(ApplicationError) as raised:
        ActivityEnvironment().run(activities(setup, qualifier="live").repair_scc_service_key_hash)
    assert raised.value.type == errors.NEEDS_OPERATOR
    assert lam.get_alias(FunctionName=setup["name"], Name="live")["FunctionVersion"] == first


def test_a_wrong_function_name_asks_an_operator_naming_the_setting(setup: dict[str, Any]) -> None:
    secrets = SecretReader(client(setup["settings"], "secretsmanager"))
    acts = SccLambdaActivities(setup["lambda"], secrets, "no-such-function", setup["secret"])
    with pytest.raises(ApplicationError) as raised:
        ActivityEnvironment().run(acts.check_scc_service_key)
    assert raised.value.type == errors.NEEDS_OPERATOR and raised.value.non_retryable
    assert "CHARTERS_SCC_LAMBDA_FUNCTION" in raised.value.details[0]["fix"]
