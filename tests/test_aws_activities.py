"""The AWS activities against moto: what a real deployment relies on (the invalidated paths, the
SES request, the ledger's lease) and how each permanent error reaches an operator."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError
from charters_dev.isolated import sample_charter
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from charters import errors
from charters.activities.cloudfront import CloudFrontActivities
from charters.activities.email import EmailActivities
from charters.activities.guest_page import GuestPageActivities
from charters.activities.ledger import EFFECT_IN_FLIGHT, EffectLedger
from charters.activities.secrets import SecretReader
from charters.aws_errors import classify
from charters.models import CrewEmailRequest, GuestPageRequest, InvalidationRequest
from charters.settings import Settings
from charters.starter.book import validate
from tests.aws_moto import client, moto_url, settings_for

__all__ = ["moto_url"]
LEDGER = "ledger-under-test"
MAIL_FROM = "bookings@charters-test.example"


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
    ActivityEnvironment().run(acts.send_crew_email, req)
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
        ActivityEnvironment().run(acts.send_crew_email, req)
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
