"""The calendar and SCC stand-ins served over HTTP from this test process, against an in-process
moto server, with the clients and activities the worker builds for them."""

from __future__ import annotations

import hashlib
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from charters_dev.calendar_standin import CalendarStore, calendar_app
from charters_dev.ports import wait_for
from charters_dev.scc_standin import scc_app
from starlette.types import ASGIApp

from charters.activities.calendar import CalendarActivities
from charters.activities.scc import SccActivities
from charters.activities.secrets import SecretReader
from charters.settings import Settings
from charters.worker.wiring import http_client
from tests.aws_moto import client, create_function

TOKEN = "dashboard-token-under-test"
SCC_KEY = "scc-key-under-test"


@contextmanager
def served(app: ASGIApp) -> Iterator[str]:
    """`app` on a free port in a thread of its own; yields its base URL."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_for(lambda: server.started, "stand-in")
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def unique_names() -> dict[str, str]:
    """Settings naming this run's secrets, function and table: moto's state is one per process,
    shared by every module's server."""
    run = uuid.uuid4().hex[:8]
    return {
        "secret_dashboard_token": f"test/{run}/dashboard-token",
        "secret_scc_service_key": f"test/{run}/scc-service-key",
        "scc_lambda_function": f"scc-api-{run}",
        "events_table": f"scc-events-{run}",
    }


def seed(settings: Settings) -> None:
    """What the stand-ins read: the two secrets, the SCC Lambda's hash and the events table."""
    secrets = client(settings, "secretsmanager")
    secrets.create_secret(Name=settings.secret_dashboard_token, SecretString=TOKEN)
    secrets.create_secret(Name=settings.secret_scc_service_key, SecretString=SCC_KEY)
    create_function(
        settings,
        settings.scc_lambda_function,
        {"SERVICE_KEY_HASH": hashlib.sha256(SCC_KEY.encode()).hexdigest()},
    )
    client(settings, "dynamodb").create_table(
        TableName=settings.events_table,
        KeySchema=[{"AttributeName": "event_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "event_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def calendar_standin(settings: Settings, store_path: Path) -> ASGIApp:
    secrets = SecretReader(client(settings, "secretsmanager"))
    return calendar_app(
        secrets,
        settings.secret_dashboard_token,
        settings.dashboard_token_header,
        CalendarStore(store_path),
    )


def scc_standin(settings: Settings) -> ASGIApp:
    return scc_app(
        lambda_client=client(settings, "lambda"),
        dynamodb=client(settings, "dynamodb"),
        s3=client(settings, "s3"),
        secrets=SecretReader(client(settings, "secretsmanager")),
        function_name=settings.scc_lambda_function,
        table=settings.events_table,
        bucket=settings.guest_bucket,
        key_header=settings.scc_service_key_header,
    )


@dataclass
class Standins:
    settings: Settings
    calendar_url: str
    scc_url: str
    store_path: Path

    def calendar(self, url: str | None = None, http: httpx.Client | None = None) -> Any:
        return CalendarActivities(
            http or http_client(),
            SecretReader(client(self.settings, "secretsmanager")),
            url or self.calendar_url,
            self.settings.dashboard_token_header,
            self.settings.secret_dashboard_token,
        )

    def scc(self, url: str | None = None) -> SccActivities:
        return SccActivities(
            http_client(),
            SecretReader(client(self.settings, "secretsmanager")),
            f"{url or self.scc_url}/prod",
            self.settings.scc_service_key_header,
            self.settings.secret_scc_service_key,
        )

    def calendar_headers(self, key: str | None = None) -> dict[str, str]:
        headers = {self.settings.dashboard_token_header: TOKEN}
        return headers | ({"Idempotency-Key": key} if key else {})

    def scc_headers(self, key: str | None = None) -> dict[str, str]:
        headers = {self.settings.scc_service_key_header: SCC_KEY}
        return headers | ({"Idempotency-Key": key} if key else {})
