"""The one place that constructs clients: boto3 and httpx from settings, handed to activities."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import httpx
from botocore.config import Config

from charters.activities import deadline
from charters.activities.brand_move import BrandMoveActivities
from charters.activities.calendar import CalendarActivities
from charters.activities.cloudfront import CloudFrontActivities
from charters.activities.email import EmailActivities
from charters.activities.guest_page import GuestPageActivities
from charters.activities.ledger import EffectLedger
from charters.activities.scc import SccActivities
from charters.activities.scc_lambda import SccLambdaActivities
from charters.activities.scc_store import SccStoreActivities
from charters.activities.secrets import SecretReader
from charters.activities.sms import SmsActivities
from charters.activities.validation import ValidationActivities
from charters.roster import CrewRoster
from charters.settings import Settings


@dataclass
class AwsClients:
    s3: Any
    dynamodb: Any
    cloudfront: Any
    sesv2: Any
    secretsmanager: Any
    lambda_: Any
    sns: Any


BOTO_ATTEMPTS = 2
"""botocore "standard" mode: total attempts, the first included, for calls a repeat cannot
harm (reads, conditional writes, same-bytes puts, RevisionId-guarded updates)."""
EFFECT_ATTEMPTS = 1
"""SES SendEmail: no botocore retry. botocore retries a read timeout, and SES may have acted on
the first request (it has no idempotency token): a blind resend is a second email. Its retry is
Temporal's, through the effect ledger, which waits out the lease so the first call can finish.
(CloudFront's CreateInvalidation dedups on CallerReference, so a repeat is harmless; it keeps the
same single attempt, its retry being Temporal's too.)"""
BOTO_BACKOFF_SECONDS = 1.0
"""Standard mode's longest pause before the second attempt without an `x-amz-retry-after`
header (rand(0, 1) x 1 s for a throttle, x 50 ms otherwise); the header can add up to 5 s, which
the deadline guard absorbs (it refuses a second request that no longer fits)."""
CONNECT_SHARE, READ_SHARE, EFFECT_READ_SHARE = 0.10, 0.15, 0.35
MIN_CONNECT_SECONDS, MIN_READ_SECONDS, MIN_EFFECT_READ_SECONDS = 0.5, 0.75, 1.5
MAX_CONNECT_SECONDS, MAX_READ_SECONDS, MAX_EFFECT_READ_SECONDS = 3.0, 10.0, 20.0
EFFECTS = ("sesv2", "cloudfront", "sns")
LEASE_MARGIN_SECONDS = 5.0
"""The effect ledger's lease outlives the activity's start-to-close timeout by this much (clock
skew between the workers that claim and take over)."""


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def _timeouts(activity_timeout: float, attempts: int) -> tuple[float, float]:
    """(connect, read) of one HTTP request, as shares of the activity timeout (see
    `aws_config`)."""
    connect = _clamp(activity_timeout * CONNECT_SHARE, MIN_CONNECT_SECONDS, MAX_CONNECT_SECONDS)
    if attempts > 1:
        read = _clamp(activity_timeout * READ_SHARE, MIN_READ_SECONDS, MAX_READ_SECONDS)
    else:
        read = _clamp(
            activity_timeout * EFFECT_READ_SHARE,
            MIN_EFFECT_READ_SECONDS,
            MAX_EFFECT_READ_SECONDS,
        )
    return connect, read


def request_seconds(activity_timeout: float, attempts: int = BOTO_ATTEMPTS) -> float:
    """One HTTP request's worst case (connect + read) for a client with `attempts`."""
    connect, read = _timeouts(activity_timeout, attempts)
    return connect + read


def call_bound_seconds(activity_timeout: float) -> float:
    """The longest one boto3 call of an activity can take, botocore's retries included."""
    return max(
        BOTO_ATTEMPTS * request_seconds(activity_timeout, BOTO_ATTEMPTS) + BOTO_BACKOFF_SECONDS,
        EFFECT_ATTEMPTS * request_seconds(activity_timeout, EFFECT_ATTEMPTS),
    )


def send_reserve_seconds(activity_timeout: float) -> float:
    """What an email attempt must have left before it sends: the send and one record write."""
    return request_seconds(activity_timeout, EFFECT_ATTEMPTS) + request_seconds(
        activity_timeout, BOTO_ATTEMPTS
    )


def lease_seconds(activity_timeout: float) -> float:
    """The effect ledger's lease: a claimant sends only inside its attempt (the reserve is
    checked against the attempt's deadline), so the attempt's timeout plus clock skew covers
    its claim latency and its send."""
    return activity_timeout + LEASE_MARGIN_SECONDS


def aws_config(
    max_pool: int = 50, activity_timeout: float | None = None, attempts: int = BOTO_ATTEMPTS
) -> Config:
    """With `activity_timeout` T (the worker's clients): timeouts and retries sized so that one
    activity attempt's worst case fits inside T. One HTTP request takes at most

        h   = connect + read      = 0.10 T + 0.15 T = 0.25 T   (2 attempts: reads, conditional
                                                               writes, same-bytes puts)
        h_e = connect + read      = 0.10 T + 0.35 T = 0.45 T   (1 attempt: SES, CloudFront)

    (connect at most 3 s, reads at most 10 s and 20 s; floors 0.5, 0.75 and 1.5 s only below
    T = 5 s). One boto3 call is at most 2 h + 1 s of backoff = 0.5 T + 1 s, and an email, the
    longest sequence that must not be cut in the middle, is claim + send + record = h + h_e +
    h = 0.95 T. T = 30 s: h = 3 + 4.5 = 7.5 s, h_e = 3 + 10.5 = 13.5 s, one call 16 s, an
    email 28.5 s; T = 5 s (the tests): 1.25 s, 2.25 s, 3.5 s, 4.75 s.

    The shares are what the usual case needs; the guarantee is the deadline guard
    (`charters.activities.deadline.guard_boto3`, set on the worker's clients by `aws_clients`):
    no request starts, botocore's retry included, unless its h fits before the attempt's
    deadline, so no boto3 request of an attempt is still sending after its start-to-close
    timeout, whatever backoff or a slow earlier call used up. Without T (seeding, CLI, tools):
    5 s connect, 20 s reads."""
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
    """`for_activities`: the worker's clients, each request sized by the activity timeout and
    refused when it would outlast the attempt's deadline."""
    budget = settings.activity_timeout_seconds if for_activities else None
    config = aws_config(max_pool, budget)
    effects = aws_config(max_pool, budget, EFFECT_ATTEMPTS)

    def client(name: str) -> Any:
        made = aws_client(settings, name, max_pool, effects if name in EFFECTS else config)
        if budget:
            attempts = EFFECT_ATTEMPTS if name in EFFECTS else BOTO_ATTEMPTS
            deadline.guard_boto3(made, request_seconds(budget, attempts))
        return made

    return AwsClients(
        s3=client("s3"),
        dynamodb=client("dynamodb"),
        cloudfront=client("cloudfront"),
        sesv2=client("sesv2"),
        secretsmanager=client("secretsmanager"),
        lambda_=client("lambda"),
        sns=client("sns"),
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
    brands = settings.brand_book()
    ledger = EffectLedger(
        aws.dynamodb,
        settings.ledger_table,
        lease_seconds=lease_seconds(settings.activity_timeout_seconds),
        send_reserve_seconds=send_reserve_seconds(settings.activity_timeout_seconds),
        ttl_attribute=settings.ledger_ttl_attribute,
        retention_seconds=settings.ledger_retention_days * 24 * 3600,
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
        brands=brands,
    )
    cloudfront = CloudFrontActivities(
        aws.cloudfront,
        settings.distribution_id,
        settings.guest_path_prefix,
        settings.guest_key_prefix,
        brands=brands,
    )
    validation = ValidationActivities(CrewRoster(aws.dynamodb, settings.crew_table), brands)
    sms = SmsActivities(
        aws.sns,
        ledger,
        secrets,
        brands,
        confirm_base_url=settings.confirm_base_url,
        magic_key_secret_id=settings.secret_magic_link_key,
        magic_link_ttl_seconds=settings.magic_link_ttl_hours * 3600,
        origination_identity=settings.sms_origination_identity,
    )
    move = BrandMoveActivities(pages, cloudfront)
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
        brands=brands,
    )
    return [
        validation.validate_booking,
        calendar.create_calendar_entry,
        calendar.update_calendar_entry,
        calendar.cancel_calendar_entry,
        scc_lambda.check_scc_service_key,
        scc_lambda.repair_scc_service_key_hash,
        scc_lambda.await_scc_service_key,
        scc.create_scc_event,
        scc.update_scc_event,
        scc.cancel_scc_event,
        store.redact_scc_revenue,
        pages.publish_guest_page,
        pages.publish_photo_album,
        cloudfront.invalidate_guest_page,
        email.send_crew_email,
        email.alert_operations,
        email.send_captain_summary,
        email.send_guest_email,
        sms.send_crew_sms,
        move.move_guest_page,
    ]
