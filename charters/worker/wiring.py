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


BOTO_ATTEMPTS = 2
"""botocore "standard" mode: total attempts, the first included, for calls a repeat cannot
harm (reads, conditional writes, same-bytes puts, RevisionId-guarded updates)."""
EFFECT_ATTEMPTS = 1
"""SES SendEmail: no botocore retry. botocore retries a read timeout, and SES may have acted on
the first request (it has no idempotency token): a blind resend is a second email. Its retry is
Temporal's, through the effect ledger, which waits out the lease so the first call can finish.
(CloudFront's CreateInvalidation dedups on CallerReference, so a repeat is harmless; it keeps the
same single attempt, its retry being Temporal's too.)"""
BOTO_BACKOFF_SECONDS = 2.0
"""Standard mode's longest pause before the second attempt (random up to 2**1 s)."""
MIN_CONNECT_SECONDS, MIN_READ_SECONDS, MIN_EFFECT_READ_SECONDS = 1.0, 5.0, 10.0
"""Floors for very short (test) activity timeouts: a loaded local moto needs seconds, and a
send cut off by a read timeout may still happen unrecorded."""
EFFECTS = ("sesv2", "cloudfront")
LEASE_MARGIN_SECONDS = 5.0
"""The effect ledger's lease outlives the longest call by this much (clock skew)."""


def _timeouts(activity_timeout: float, attempts: int) -> tuple[float, float]:
    connect = max(MIN_CONNECT_SECONDS, min(3.0, activity_timeout / 10))
    backoff = BOTO_BACKOFF_SECONDS if attempts > 1 else 0.0
    read = (activity_timeout - backoff - attempts * connect) / attempts
    if attempts > 1:
        return connect, max(MIN_READ_SECONDS, min(10.0, read))
    return connect, max(MIN_EFFECT_READ_SECONDS, min(20.0, read))


def call_bound_seconds(activity_timeout: float) -> float:
    """The longest one boto3 call of an activity can take, botocore's retries included."""
    bounds = []
    for attempts in (BOTO_ATTEMPTS, EFFECT_ATTEMPTS):
        connect, read = _timeouts(activity_timeout, attempts)
        backoff = BOTO_BACKOFF_SECONDS if attempts > 1 else 0.0
        bounds.append(attempts * (connect + read) + backoff)
    return max(bounds)


def aws_config(
    max_pool: int = 50, activity_timeout: float | None = None, attempts: int = BOTO_ATTEMPTS
) -> Config:
    """With `activity_timeout` T (the worker's clients): timeouts and retries that fit inside
    one activity attempt, so no boto3 call outlives the start-to-close timeout that ends the
    attempt (a call still running after T belongs to an attempt Temporal has already retried).
    Worst case of one API call:

        attempts * (connect + read) + backoff <= T,   connect = min(3, T/10)
        2 attempts: read = min(10, (T - 2 - 2 * connect) / 2)
        1 attempt (SES, CloudFront): read = min(20, T - connect)

    T = 30 s: 2 * (3 + 10) + 2 = 28 s, and 3 + 20 = 23 s (SES's default was 3 attempts of 60 s
    reads). For T under ~14 s (the tests' 5 s) the floors win (14 s, 11 s); the ledger's lease
    is computed from this bound, not from T, so it still covers the call. The Lambda repair's
    waiter heartbeats and is bounded separately. Without T (seeding, CLI, tools): 20 s reads."""
    if activity_timeout:
        connect, read = _timeouts(activity_timeout, attempts)
    else:
        connect, read = 5.0, 20.0
    return Config(
        retries={"max_attempts": attempts, "mode": "standard"},
        max_pool_connections=max_pool,
        connect_timeout=connect,
        read_timeout=read,
    )


def aws_client(
    settings: Settings, name: str, max_pool: int = 50, config: Config | None = None
) -> Any:
    """Clients are thread-safe and reused by every activity; boto3's own retries are kept short
    because Temporal's retry policy is the one that owns retrying."""
    local = settings.profile == "local"
    session = boto3.session.Session(
        region_name=settings.aws_region,
        aws_access_key_id="testing" if local else None,
        aws_secret_access_key="testing" if local else None,
    )
    return session.client(
        name, endpoint_url=settings.aws_endpoint_url, config=config or aws_config(max_pool)
    )


def sqs_client(settings: Settings, wait_seconds: int) -> Any:
    """The bounce listener's SQS client: a long poll holds the read for `wait_seconds`, so the
    read timeout must exceed it (it runs outside any activity)."""
    config = Config(
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=5,
        read_timeout=wait_seconds + 10,
    )
    return aws_client(settings, "sqs", config=config)


def aws_clients(settings: Settings, max_pool: int = 50, for_activities: bool = False) -> AwsClients:
    """`for_activities`: the worker's clients, each call bounded by the activity timeout."""
    budget = settings.activity_timeout_seconds if for_activities else None
    config = aws_config(max_pool, budget)
    effects = aws_config(max_pool, budget, EFFECT_ATTEMPTS)

    def client(name: str) -> Any:
        return aws_client(settings, name, max_pool, effects if name in EFFECTS else config)

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
    ledger = EffectLedger(
        aws.dynamodb,
        settings.ledger_table,
        lease_seconds=max(
            settings.activity_timeout_seconds,
            call_bound_seconds(settings.activity_timeout_seconds),
        )
        + LEASE_MARGIN_SECONDS,
    )
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
        cloudfront_hosts=settings.scc_cloudfront_hosts,
    )
    scc_lambda = SccLambdaActivities(
        aws.lambda_,
        secrets,
        settings.scc_lambda_function,
        settings.secret_scc_service_key,
        qualifier=settings.scc_lambda_qualifier,
        wait_seconds=min(
            settings.scc_lambda_wait_seconds, settings.activity_timeout_seconds * 2 / 3
        ),
    )
    store = SccStoreActivities(aws.dynamodb, settings.events_table)
    pages = GuestPageActivities(
        aws.s3,
        settings.guest_bucket,
        settings.guest_key_prefix,
        settings.presign_api_url or settings.scc_api_url,
    )
    cloudfront = CloudFrontActivities(
        aws.cloudfront,
        settings.distribution_id,
        settings.guest_path_prefix,
        settings.guest_key_prefix,
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
        configuration_set=settings.ses_configuration_set,
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
