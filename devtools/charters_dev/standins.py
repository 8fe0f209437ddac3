"""Runs the calendar and SCC stand-ins (and SCC as seen through CloudFront) and the guest-page
CloudFront edge in one process."""

from __future__ import annotations

import asyncio

import uvicorn

from charters.activities.secrets import SecretReader
from charters.settings import Settings
from charters.worker.wiring import aws_clients
from charters_dev.calendar_standin import CalendarStore, calendar_app
from charters_dev.edge import edge_from_settings
from charters_dev.scc_standin import BehindCloudFront, scc_app


async def serve_standins(settings: Settings) -> None:
    aws = aws_clients(settings)
    secrets = SecretReader(aws.secretsmanager, ttl_seconds=2.0)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    calendar = calendar_app(
        secrets,
        settings.secret_dashboard_token,
        settings.dashboard_token_header,
        CalendarStore(settings.state_dir / "calendar.json"),
    )
    scc = scc_app(
        lambda_client=aws.lambda_,
        dynamodb=aws.dynamodb,
        s3=aws.s3,
        secrets=secrets,
        function_name=settings.scc_lambda_function,
        table=settings.events_table,
        bucket=settings.guest_bucket,
        key_header=settings.scc_service_key_header,
    )
    servers = [
        uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        for app, port in (
            (calendar, settings.calendar_port),
            (scc, settings.scc_port),
            (BehindCloudFront(scc, settings.scc_service_key_header), settings.scc_cloudfront_port),
            (edge_from_settings(settings, aws.s3), settings.edge_port),
        )
    ]
    await asyncio.gather(*(s.serve() for s in servers))
