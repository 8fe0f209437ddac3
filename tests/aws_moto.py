"""A moto server in this test process (so a test can make it behave like AWS where moto does
not), and the clients the product builds against it.

moto 5 ignores UpdateFunctionConfiguration's RevisionId, keeps one RevisionId for a function's
whole life and always reports LastUpdateStatus=Successful. `faithful_lambda()` makes the
in-process server do what the Lambda API reference documents: a new RevisionId on every update,
PreconditionFailedException for a stale one, and `InProgress` for the next reads after an update.
The product's code runs unchanged against it, over HTTP, through boto3."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from moto.awslambda.exceptions import PreconditionFailedException
from moto.awslambda.models import LambdaFunction
from moto.server import ThreadedMotoServer

from charters.settings import Settings
from charters.worker.wiring import aws_client

LambdaFunction.docker_client = property(lambda self: None)  # type: ignore[assignment,method-assign]


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def settings_for(moto_url: str, tmp: Path, **overrides: Any) -> Settings:
    return Settings(
        profile="local",
        state_dir=tmp,
        aws_endpoint_url=moto_url,
        activity_timeout_seconds=30.0,
        **overrides,
    )


def client(settings: Settings, name: str) -> Any:
    return aws_client(settings, name)


def lambda_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("handler.py", "def handler(event, context):\n    return {}\n")
    return buf.getvalue()


def create_function(settings: Settings, name: str, variables: dict[str, str]) -> None:
    iam = client(settings, "iam")
    role = iam.create_role(
        RoleName=f"{name}-role",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    client(settings, "lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": lambda_zip()},
        Environment={"Variables": variables},
    )


def _revision(fn: Any) -> str:
    if not getattr(fn, "revision_id", None):
        fn.revision_id = str(uuid.uuid4())
    return str(fn.revision_id)


@contextmanager
def faithful_lambda(
    in_progress_reads: int = 0, status: str = "InProgress"
) -> Iterator[dict[str, int]]:
    """RevisionId checked and renewed on every configuration update, and `status` (InProgress,
    or Failed) reported for the next `in_progress_reads` reads after each update. Yields
    counters of what the server saw (`stale_writes`, `in_progress_answers`)."""
    seen = {"stale_writes": 0, "in_progress_answers": 0}
    update, get = LambdaFunction.update_configuration, LambdaFunction.get_configuration

    def update_configuration(self: Any, config_updates: dict[str, Any]) -> dict[str, Any]:
        wanted = config_updates.get("RevisionId")
        if wanted and wanted != _revision(self):
            seen["stale_writes"] += 1
            raise PreconditionFailedException(
                "The Revision Id provided does not match the latest Revision Id."
            )
        self.revision_id = str(uuid.uuid4())
        self._reads_in_progress = in_progress_reads
        return update(self, config_updates)

    def get_configuration(self: Any, on_create: bool = False) -> dict[str, Any]:
        config = get(self, on_create)
        config["RevisionId"] = _revision(self)
        if getattr(self, "_reads_in_progress", 0) > 0:
            self._reads_in_progress -= 1
            seen["in_progress_answers"] += 1
            config["LastUpdateStatus"] = status
            if status == "Failed":
                config["LastUpdateStatusReason"] = "EniLimitExceeded: the VPC has no free ENI"
        return config

    LambdaFunction.update_configuration = update_configuration  # type: ignore[method-assign]
    LambdaFunction.get_configuration = get_configuration  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        LambdaFunction.update_configuration = update  # type: ignore[method-assign]
        LambdaFunction.get_configuration = get  # type: ignore[method-assign]
