"""The one place that constructs clients: boto3 and httpx from settings, handed to activities."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import httpx
from botocore.config import Config

from charters.activities.calendar import CalendarActivities
from charters.activities.cloudfront import CloudFrontActivities
from charters.activities.email import EmailActivities
from charters.activities.guest_page import GuestPageActivities
from charters.activities.ledger import EffectLedger
from charters.activities.scc import SccActivities
from charters.activities.scc_lambda import SccLambdaActivities
from charters.activities.scc_store import SccStoreActivities
from charters.activities.secrets import SecretReader
from charters.activities.validation import validate_booking
from charters.settings import Settings


@dataclass
class AwsClients:
    s3: Any
    dynamodb: Any
    cloudfront: Any
    sesv2: Any
    secretsmanager: Any
    lambda_: Any


def aws_client(settings: Settings, name: str, max_pool: int = 50) -> Any:
    """Clients are thread-safe and reused by every activity; boto3's own retries are kept short
    because Temporal's retry policy is the one that owns retrying."""
    local = settings.profile == "local"
    session = boto3.session.Session(
        region_name=settings.aws_region,
        aws_access_key_id="testing" if local else None,
        aws_secret_access_key="testing" if local else None,
    )
    config = Config(
        retries={"max_attempts": 2, "mode": "standard"},
        max_pool_connections=max_pool,
        connect_timeout=5,
        read_timeout=20,
    )
    return session.client(name, endpoint_url=settings.aws_endpoint_url, config=config)


def aws_clients(settings: Settings, max_pool: int = 50) -> AwsClients:
    def client(name: str) -> Any:
        return aws_client(settings, name, max_pool)

    return AwsClients(
        s3=client("s3"),
        dynamodb=client("dynamodb"),
        cloudfront=client("cloudfront"),
        sesv2=client("sesv2"),
        secretsmanager=client("secretsmanager"),
        lambda_=client("lambda"),
    )


def http_client(max_connections: int = 50) -> httpx.Client:
    return httpx.Client(
        timeout=httpx.Timeout(20.0, connect=5.0),
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
    )


def activities(settings: Settings, aws: AwsClients, http: httpx.Client) -> list[Callable[..., Any]]:
    secrets = SecretReader(aws.secretsmanager)
    ledger = EffectLedger(aws.dynamodb, settings.ledger_table)
    calendar = CalendarActivities(
        http,
        secrets,
        settings.calendar_url,
        settings.dashboard_token_header,
        settings.secret_dashboard_token,
    )
    scc = SccActivities(
        http,
        secrets,
        settings.scc_api_url,
        settings.scc_service_key_header,
        settings.secret_scc_service_key,
    )
    scc_lambda = SccLambdaActivities(
        aws.lambda_, secrets, settings.scc_lambda_function, settings.secret_scc_service_key
    )
    store = SccStoreActivities(aws.dynamodb, settings.events_table)
    pages = GuestPageActivities(
        aws.s3,
        settings.guest_bucket,
        settings.guest_key_prefix,
        settings.presign_api_url or settings.scc_api_url,
    )
    cloudfront = CloudFrontActivities(
        aws.cloudfront, ledger, settings.distribution_id, settings.guest_path_prefix
    )
    email = EmailActivities(
        aws.sesv2,
        ledger,
        secrets,
        mail_from=settings.mail_from,
        operations_email=settings.operations_email,
        confirm_base_url=settings.confirm_base_url,
        magic_key_secret_id=settings.secret_magic_link_key,
        magic_link_ttl_seconds=settings.magic_link_ttl_hours * 3600,
    )
    return [
        validate_booking,
        calendar.create_calendar_entry,
        calendar.update_calendar_entry,
        scc_lambda.check_scc_service_key,
        scc_lambda.repair_scc_service_key_hash,
        scc_lambda.await_scc_service_key,
        scc.create_scc_event,
        scc.update_scc_event,
        store.redact_scc_revenue,
        pages.publish_guest_page,
        pages.publish_photo_album,
        cloudfront.invalidate_guest_page,
        email.send_crew_email,
        email.alert_operations,
        email.send_captain_summary,
        email.send_guest_email,
    ]
