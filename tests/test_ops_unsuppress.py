"""`charters ops unsuppress <address>`: SES v2 DeleteSuppressedDestination after a fix, one line
either way. moto does not implement the suppression list, so the SES answers here are botocore's
Stubber (AWS's own stub, which checks every request and response against the service model),
plus one real run of the command against a moto server, whose refusal must also be one line."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto.server import ThreadedMotoServer

from charters.starter.ops_commands import UnsuppressError, unsuppress

ADDRESS = "jordan@sailjada.com"


@pytest.fixture()
def sesv2() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client(
        "sesv2", region_name="us-west-2", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stub:
        yield client, stub


def test_a_suppressed_address_is_removed(sesv2: tuple[Any, Stubber]) -> None:
    client, stub = sesv2
    stub.add_response(
        "get_suppressed_destination",
        {
            "SuppressedDestination": {
                "EmailAddress": ADDRESS,
                "Reason": "BOUNCE",
                "LastUpdateTime": datetime(2026, 11, 30, tzinfo=UTC),
            }
        },
        {"EmailAddress": ADDRESS},
    )
    stub.add_response("delete_suppressed_destination", {}, {"EmailAddress": ADDRESS})
    line = unsuppress(client, ADDRESS)
    assert line.startswith(f"{ADDRESS} removed from the SES suppression list")
    assert "BOUNCE" in line
    stub.assert_no_pending_responses()


def test_an_address_not_suppressed_is_nothing_to_do(sesv2: tuple[Any, Stubber]) -> None:
    client, stub = sesv2
    stub.add_client_error(
        "get_suppressed_destination", "NotFoundException", "not found", http_status_code=404
    )
    assert (
        unsuppress(client, ADDRESS)
        == f"{ADDRESS} is not on the SES suppression list: nothing to do"
    )


def test_missing_permission_is_one_line(sesv2: tuple[Any, Stubber]) -> None:
    client, stub = sesv2
    stub.add_client_error(
        "get_suppressed_destination", "AccessDeniedException", "no", http_status_code=403
    )
    with pytest.raises(UnsuppressError, match="ses:DeleteSuppressedDestination"):
        unsuppress(client, ADDRESS)


def test_not_an_address_is_refused_before_any_call(sesv2: tuple[Any, Stubber]) -> None:
    client, _ = sesv2
    with pytest.raises(UnsuppressError, match="is not an e-mail address"):
        unsuppress(client, "jordan at sailjada")


def test_the_command_fails_in_one_line_against_a_real_endpoint() -> None:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHARTERS_")}
        env.update(
            CHARTERS_PROFILE="aws",
            CHARTERS_AWS_ENDPOINT_URL=f"http://{host}:{port}",
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
        )
        proc = subprocess.run(
            [str(Path(sys.executable).parent / "charters"), "ops", "unsuppress", ADDRESS],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        server.stop()
    # moto has no suppression list: whatever it answers, the operator reads one line
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert proc.returncode in (0, 1)
