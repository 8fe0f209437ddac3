"""The AWS activities against moto: what a real deployment relies on (the invalidated paths, the
SES request, the ledger's lease) and how each permanent error reaches an operator."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from charters_dev.faultproxy import FaultProxy
from charters_dev.isolated import sample_charter
from charters_dev.mailbox import Mail, sent_mail
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from charters import errors
from charters.activities.cloudfront import CloudFrontActivities
from charters.activities.email import EmailActivities
from charters.activities.guest_page import GuestPageActivities
from charters.activities.ledger import EFFECT_IN_FLIGHT, EffectLedger
from charters.activities.secrets import SecretReader
from charters.aws_errors import classify
from charters.models import (
    CrewEmailRequest,
    EmailSent,
    GuestEmailRequest,
    GuestPageRequest,
    InvalidationRequest,
)
from charters.settings import Settings
from charters.starter.book import validate
from charters.worker import wiring
from tests.aws_moto import client, moto_url, settings_for
from tests.support import REVENUE_STRINGS, attempt

__all__ = ["moto_url"]
LEDGER = "ledger-under-test"
MAIL_FROM = "bookings@charters-test.example"
INFRA = (Path(__file__).parent.parent / "infra" / "charters.yaml").read_text()


@pytest.fixture(scope="module")
def settings(moto_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = settings_for(moto_url, tmp_path_factory.mktemp("aws"), mail_from=MAIL_FROM)
    ddb = client(settings, "dynamodb")
    ddb.create_table(
        TableName=LEDGER,
        KeySchema=[{"AttributeName": "key", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "key", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client(settings, "sesv2").create_email_identity(EmailIdentity=MAIL_FROM)
    client(settings, "secretsmanager").create_secret(
        Name=settings.secret_magic_link_key, SecretString="k" * 32
    )
    return settings


def ledger(settings: Settings, lease: float = 60.0) -> EffectLedger:
    return EffectLedger(client(settings, "dynamodb"), LEDGER, lease_seconds=lease)


def distribution(settings: Settings) -> str:
    cf = client(settings, "cloudfront")
    origin = {
        "Id": "o",
        "DomainName": "b.s3.amazonaws.com",
        "S3OriginConfig": {"OriginAccessIdentity": ""},
    }
    answer = cf.create_distribution(
        DistributionConfig={
            "CallerReference": f"test-{uuid.uuid4().hex}",
            "Comment": "test",
            "Enabled": True,
            "Origins": {"Quantity": 1, "Items": [origin]},
            "DefaultCacheBehavior": {
                "TargetOriginId": "o",
                "ViewerProtocolPolicy": "allow-all",
                "MinTTL": 0,
                "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
                "TrustedSigners": {"Enabled": False, "Quantity": 0},
            },
        }
    )
    return str(answer["Distribution"]["Id"])


def test_invalidation_covers_the_viewer_paths_and_the_rewritten_key(settings: Settings) -> None:
    dist = distribution(settings)
    cf = client(settings, "cloudfront")
    acts = CloudFrontActivities(cf, dist, "/g/", "guest-pages/")
    ref = ActivityEnvironment().run(
        acts.invalidate_guest_page,
        InvalidationRequest(
            idempotency_key="charter-INV1", slug="may-30-smith", content_sha256="a"
        ),
    )
    recorded = cf.get_invalidation(DistributionId=dist, Id=ref.invalidation_id)["Invalidation"]
    assert sorted(recorded["InvalidationBatch"]["Paths"]["Items"]) == [
        "/g/may-30-smith",
        "/g/may-30-smith/",
        "/guest-pages/may-30-smith.html",
    ]


def test_a_wrong_distribution_id_asks_an_operator(settings: Settings) -> None:
    acts = CloudFrontActivities(client(settings, "cloudfront"), "ENOPE", "/g/")
    req = InvalidationRequest(idempotency_key="charter-INV2", slug="s", content_sha256="b")
    with pytest.raises(ApplicationError) as raised:
        ActivityEnvironment().run(acts.invalidate_guest_page, req)
    assert raised.value.type == errors.NEEDS_OPERATOR and raised.value.non_retryable
    assert "CHARTERS_DISTRIBUTION_ID" in raised.value.details[0]["fix"]


def test_a_missing_bucket_asks_an_operator(settings: Settings) -> None:
    booking = validate(sample_charter("BUCKET1"))
    req = GuestPageRequest(charter=booking.crew_view("https://x/g/s"), event_id=None)
    acts = GuestPageActivities(client(settings, "s3"), "no-such-bucket", "guest-pages/", "")
    with pytest.raises(ApplicationError) as raised:
        ActivityEnvironment().run(acts.publish_guest_page, req)
    assert raised.value.type == errors.NEEDS_OPERATOR
    assert "CHARTERS_GUEST_BUCKET" in raised.value.details[0]["fix"]
    assert raised.value.details[0]["subject"] == "no-such-bucket"


def test_a_missing_ledger_table_asks_an_operator(settings: Settings) -> None:
    broken = EffectLedger(client(settings, "dynamodb"), "no-such-table")
    with pytest.raises(ApplicationError) as raised:
        broken.once("k", "email", lambda: "sent")
    assert raised.value.type == errors.NEEDS_OPERATOR
    assert "CHARTERS_LEDGER_TABLE" in raised.value.details[0]["fix"]


def test_a_claim_inside_its_lease_is_not_taken_over(settings: Settings) -> None:
    """An attempt that claimed the key and may still be sending: the next attempt does not send
    too, it raises a retryable 'in flight'; once the lease is over it takes over, once."""
    sent: list[str] = []

    def send(result: str) -> Any:
        def effect() -> str:
            sent.append(result)
            return result

        return effect

    assert ledger(settings).claim("email:lease", "email")  # the first attempt, still running
    with pytest.raises(ApplicationError) as raised:
        ledger(settings).once("email:lease", "email", send("m1"))
    assert raised.value.type == EFFECT_IN_FLIGHT and not raised.value.non_retryable
    assert sent == []
    expired = ledger(settings, lease=0.0)
    assert expired.once("email:lease", "email", send("m2")) == (
        "m2",
        False,
    )
    assert expired.once("email:lease", "email", send("m3")) == (
        "m2",
        True,
    )
    assert sent == ["m2"]


def email_activities(settings: Settings, mail_from: str = MAIL_FROM) -> EmailActivities:
    return EmailActivities(
        client(settings, "sesv2"),
        ledger(settings),
        SecretReader(client(settings, "secretsmanager")),
        mail_from=mail_from,
        operations_email="ops@charters-test.example",
        confirm_base_url="https://confirm.example",
        magic_key_secret_id=settings.secret_magic_link_key,
        magic_link_ttl_seconds=3600,
        configuration_set="charters-mail",
    )


def crew_request(ref: str) -> CrewEmailRequest:
    booking = validate(sample_charter(ref))
    role, member = booking.members[1]
    return CrewEmailRequest(
        idempotency_key=f"charter-{ref}:invite:1:{member.id}",
        workflow_id=f"charter-{ref}",
        member=member,
        role=role,
        charter=booking.crew_view("https://x/g/s"),
    )


def test_crew_email_has_a_text_part_the_configuration_set_and_tags(settings: Settings) -> None:
    acts = email_activities(settings)
    sent: list[dict[str, Any]] = []
    acts._ses.meta.events.register(
        "provide-client-params.sesv2.SendEmail", lambda params, **_: sent.append(params)
    )
    req = crew_request("MAIL1")
    attempt().run(acts.send_crew_email, req)
    (params,) = sent
    body = params["Content"]["Simple"]["Body"]
    text = body["Text"]["Data"]
    assert "<p>" not in text and "<a " not in text and "Accept <https://confirm.example/c/" in text
    assert "<p>" in body["Html"]["Data"]
    assert params["ConfigurationSetName"] == "charters-mail"
    tags = {t["Name"]: t["Value"] for t in params["EmailTags"]}
    assert tags == {"workflow_id": "charter-MAIL1", "crew_id": req.member.id, "kind": "invite"}


def test_ses_refusing_to_send_asks_an_operator_naming_the_member(settings: Settings) -> None:
    """moto answers MessageRejected for an unverified sender, as SES does in the sandbox."""
    acts = email_activities(settings, mail_from="nobody@unverified.example")
    req = crew_request("MAIL2")
    with pytest.raises(ApplicationError) as raised:
        attempt().run(acts.send_crew_email, req)
    assert raised.value.type == errors.NEEDS_OPERATOR and raised.value.non_retryable
    assert raised.value.details[0]["subject"] == req.member.id
    assert req.member.email not in raised.value.details[0]["subject"]


@pytest.mark.parametrize(
    ("code", "status", "retryable"),
    [
        ("ThrottlingException", 400, True),
        ("TooManyRequestsException", 429, True),
        ("InternalFailure", 500, True),
        ("ServiceUnavailable", 503, True),
        ("ResourceConflictException", 409, True),
        ("MessageRejected", 400, False),
        ("AccessDeniedException", 403, False),
        ("NoSuchBucket", 404, False),
    ],
)
def test_classification(code: str, status: int, retryable: bool) -> None:
    exc = ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "Op",
    )
    err = classify(exc, "X", {}, "check CHARTERS_X")
    assert err.non_retryable is not retryable
    if not retryable:
        assert err.type == errors.NEEDS_OPERATOR and err.details[0]["fix"]


def test_a_missing_secret_asks_an_operator_naming_it(settings: Settings) -> None:
    reader = SecretReader(client(settings, "secretsmanager"))
    with pytest.raises(ApplicationError) as raised:
        reader.get("charters/no-such-secret")
    assert raised.value.type == errors.NEEDS_OPERATOR
    assert raised.value.details[0]["subject"] == "charters/no-such-secret"


def test_a_retried_invalidation_sends_the_same_caller_reference(settings: Settings) -> None:
    """A retry after a lost answer repeats the request with the same CallerReference, which
    CloudFront answers with the first invalidation (API reference, InvalidationBatch): no ledger
    is needed. (moto ignores the reference and makes a second one: it cannot prove the dedup.)"""
    dist = distribution(settings)
    cf = client(settings, "cloudfront")
    acts = CloudFrontActivities(cf, dist, "/g/", "guest-pages/")
    req = InvalidationRequest(idempotency_key="charter-INV3", slug="jun-1-x", content_sha256="c")
    first = ActivityEnvironment().run(acts.invalidate_guest_page, req)
    again = ActivityEnvironment().run(acts.invalidate_guest_page, req)
    assert again.caller_reference == first.caller_reference == "charter-INV3:c"
    other = ActivityEnvironment().run(
        acts.invalidate_guest_page, req.model_copy(update={"content_sha256": "d"})
    )
    assert other.caller_reference != first.caller_reference  # new content, new invalidation


def test_a_claim_carries_its_expiry_in_the_tables_ttl_attribute(settings: Settings) -> None:
    """infra/charters.yaml names `expires_at` as the ledger's TTL attribute (epoch seconds)."""
    assert "AttributeName: !Ref LedgerTtlAttribute" in INFRA and "Default: expires_at" in INFRA
    assert ledger(settings).claim("email:ttl", "email")
    item = client(settings, "dynamodb").get_item(TableName=LEDGER, Key={"key": {"S": "email:ttl"}})[
        "Item"
    ]
    expires = int(item[settings.ledger_ttl_attribute]["N"])
    assert expires >= time.time() + settings.ledger_retention_days * 24 * 3600 - 60


@pytest.mark.parametrize("timeout", [5.0, 10.0, 30.0, 120.0])
def test_the_lease_outlives_the_longest_claimant(timeout: float) -> None:
    """A claimant sends only while its attempt's deadline leaves the send and its record, so it
    is done `timeout` after its attempt began; the lease is that plus clock skew. The usual
    email (claim, send, record) and any one boto3 call fit inside the timeout."""
    assert wiring.lease_seconds(timeout) >= timeout + wiring.LEASE_MARGIN_SECONDS
    claim = wiring.request_seconds(timeout)
    assert claim + wiring.send_reserve_seconds(timeout) <= timeout
    assert wiring.call_bound_seconds(timeout) <= timeout


def test_the_worker_ledger_is_wired_with_that_lease(settings: Settings) -> None:
    acts = wiring.activities(
        settings, wiring.aws_clients(settings, for_activities=True), wiring.http_client()
    )
    (send,) = [a for a in acts if getattr(a, "__name__", "") == "send_crew_email"]
    wired: EffectLedger = getattr(send, "__self__")._ledger  # noqa: B009 - a bound method
    timeout = settings.activity_timeout_seconds
    assert wired.lease_seconds == wiring.lease_seconds(timeout) >= timeout
    assert wired._reserve == wiring.send_reserve_seconds(timeout)


def test_too_little_time_left_claims_nothing(settings: Settings) -> None:
    short = EffectLedger(client(settings, "dynamodb"), LEDGER, send_reserve_seconds=10.0)
    with pytest.raises(ApplicationError) as raised:
        attempt(timeout=5.0).run(short.once, "email:short", "email", lambda: "m")
    assert raised.value.type == errors.ATTEMPT_DEADLINE and not raised.value.non_retryable
    assert not ledger(settings).claimed("email:short")


def test_a_send_that_could_outlast_the_lease_is_released_unsent(settings: Settings) -> None:
    """A claim whose send might end after `claimed_at + lease` is given back unsent, so the
    next attempt need not wait the lease out."""
    tight = EffectLedger(
        client(settings, "dynamodb"), LEDGER, lease_seconds=1.0, send_reserve_seconds=1.0
    )
    sent: list[str] = []

    def send() -> str:
        sent.append("m")
        return "m"

    with pytest.raises(ApplicationError) as raised:
        attempt().run(tight.once, "email:tight", "email", send)
    assert raised.value.type == EFFECT_IN_FLIGHT and sent == []
    assert not ledger(settings).claimed("email:tight")


def mail_to(settings: Settings, address: str, ref: str) -> list[Mail]:
    return [
        m
        for m in sent_mail(settings.aws_endpoint_url or "")
        if address in m.to and ref in m.subject
    ]


def test_a_cancellation_notice_goes_only_to_a_member_who_was_asked(settings: Settings) -> None:
    acts = email_activities(settings)
    invite = crew_request("ASKED1")
    notice = invite.model_copy(
        update={
            "idempotency_key": invite.idempotency_key.replace(":invite:", ":cancelled:"),
            "kind": "cancelled",
            "only_if_sent": [invite.idempotency_key],
        }
    )
    skipped = attempt().run(acts.send_crew_email, notice)
    assert skipped == EmailSent(message_id="", duplicate=False, skipped=True)
    assert mail_to(settings, invite.member.email, "ASKED1") == []

    attempt().run(acts.send_crew_email, invite)
    told = attempt().run(acts.send_crew_email, notice)
    assert told.message_id and not told.skipped and not told.duplicate
    subjects = sorted(m.subject for m in mail_to(settings, invite.member.email, "ASKED1"))
    assert len(subjects) == 2 and [s for s in subjects if s.startswith("Cancelled:")]


def test_an_invitation_ses_refused_leaves_no_claim_and_no_cancellation(
    settings: Settings,
) -> None:
    """SES refusing the send (an unverified sender: MessageRejected) means nothing was sent:
    the claim is given back, so the member is not told of a cancellation of something they
    never heard of, and a later attempt sends at once."""
    invite = crew_request("REFUSED1")
    refused = email_activities(settings, mail_from="nobody@unverified.example")
    with pytest.raises(ApplicationError):
        attempt().run(refused.send_crew_email, invite)
    assert not ledger(settings).claimed(f"email:{invite.idempotency_key}")
    notice = invite.model_copy(
        update={
            "idempotency_key": invite.idempotency_key.replace(":invite:", ":cancelled:"),
            "kind": "cancelled",
            "only_if_sent": [invite.idempotency_key],
        }
    )
    assert attempt().run(email_activities(settings).send_crew_email, notice).skipped
    assert mail_to(settings, invite.member.email, "REFUSED1") == []


def test_a_refused_take_over_keeps_the_earlier_claim(settings: Settings) -> None:
    """An attempt died after claiming (it may have sent: the SES window). The attempt that takes
    its claim over is refused by SES; the claim stays, so a cancellation notice is still owed
    and the next attempt takes it over at once, counted, rather than starting a fresh claim as
    if nothing had ever gone out."""
    key = f"email:take-over-{uuid.uuid4().hex[:8]}"
    short = ledger(settings, lease=0.5)
    assert short.claim(key, "email")  # the attempt that died
    time.sleep(0.6)
    ses = client(settings, "sesv2")

    def refused_send() -> str:
        ses.send_email(
            FromEmailAddress="nobody@unverified.example",
            Destination={"ToAddresses": ["crew@example.com"]},
            Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}},
        )
        return "never"

    with pytest.raises(ClientError):
        attempt().run(short.once, key, "email", refused_send)
    assert short.claimed(key)
    assert attempt().run(short.once, key, "email", lambda: "m2") == ("m2", False)
    item = client(settings, "dynamodb").get_item(TableName=LEDGER, Key={"key": {"S": key}})
    assert item["Item"]["attempts"]["N"] == "3"


def test_the_guest_is_told_of_a_cancellation_without_money(settings: Settings) -> None:
    booking = validate(sample_charter("GUESTX1", guest_name="Ann <b>Lee</b>"))
    req = GuestEmailRequest(
        idempotency_key="charter-GUESTX1:guest-cancelled",
        guest_email=booking.guest.email,
        charter=booking.crew_view("https://queenofsandiego.com/g/x"),
        kind="cancelled",
    )
    attempt().run(email_activities(settings).send_guest_email, req)
    (mail,) = mail_to(settings, booking.guest.email, "GUESTX1")
    date = booking.starts_at.date().isoformat()
    assert mail.subject == f"Your charter on {date} is cancelled (GUESTX1)"
    assert "cancelled" in mail.body and "Ann &lt;b&gt;Lee&lt;/b&gt;" in mail.body
    assert not [s for s in REVENUE_STRINGS if s in mail.body]


@pytest.fixture
def slow_dynamodb(settings: Settings) -> Iterator[Any]:
    """A DynamoDB client whose every request the fault proxy holds for 1 s before moto sees it."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    proxy = FaultProxy(0, settings.aws_endpoint_url or "", "delay=1s", aws=True, name="slow")
    port = asyncio.run_coroutine_threadsafe(proxy.start(), loop).result(10)
    try:
        slow = settings.model_copy(update={"aws_endpoint_url": f"http://127.0.0.1:{port}"})
        yield client(slow, "dynamodb")
    finally:
        asyncio.run_coroutine_threadsafe(proxy.aclose(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_a_claim_that_leaves_too_little_time_is_released_unsent(
    settings: Settings, slow_dynamodb: Any
) -> None:
    """The attempt had time for the send when it began to claim; the slow claim used it up, so
    it gives the claim back and sends nothing, and the next attempt need not wait the lease."""
    reserve = 4.0
    slow = EffectLedger(slow_dynamodb, LEDGER, lease_seconds=60.0, send_reserve_seconds=reserve)
    sent: list[str] = []

    def send() -> str:
        sent.append("m")
        return "m"

    with pytest.raises(ApplicationError) as raised:
        attempt(timeout=5.0, spent=0.5).run(slow.once, "email:slow-claim", "email", send)
    assert raised.value.type == errors.ATTEMPT_DEADLINE and sent == []
    assert not ledger(settings).claimed("email:slow-claim")
    assert attempt().run(ledger(settings).once, "email:slow-claim", "email", send) == ("m", False)
