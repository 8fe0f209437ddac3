"""A bounce in SES's event-publishing format, published to SNS, delivered by moto to the SQS
queue subscribed to the topic, consumed by the worker's listener and signalled to the booking's
workflow (a small workflow defined here that records what it receives: the booking workflow's
own handling, the blocked seat and the alert, is tested with the workflow)."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from charters_dev.ports import free_port
from temporalio import workflow
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from charters import contract
from charters.codec import data_converter
from charters.models import EmailBounced
from charters.worker import bounces
from tests.aws_moto import client, moto_url, settings_for

__all__ = ["moto_url"]
ADDRESS = "jordan.deckhand@example.com"


@workflow.defn(name="BounceRecorder")
class BounceRecorder:
    """Stands in for the booking workflow's `email_bounced` handler: records and ends."""

    def __init__(self) -> None:
        self.received: list[EmailBounced] = []

    @workflow.run
    async def run(self) -> list[EmailBounced]:
        await workflow.wait_condition(lambda: bool(self.received))
        return self.received

    @workflow.signal(name=contract.SIGNAL_EMAIL_BOUNCED)
    def email_bounced(self, event: EmailBounced) -> None:
        self.received.append(event)


def ses_event(event_type: str, workflow_id: str | None, crew_id: str | None) -> dict[str, Any]:
    """An event as SES publishes it through a configuration set's SNS destination (SES guide,
    "Examples of event data that Amazon SES publishes to Amazon SNS")."""
    tags: dict[str, list[str]] = {"ses:configuration-set": ["charters-mail"]}
    if workflow_id:
        tags["workflow_id"] = [workflow_id]
    if crew_id:
        tags["crew_id"] = [crew_id]
    event: dict[str, Any] = {
        "eventType": event_type,
        "mail": {
            "timestamp": "2026-11-28T09:00:00.000Z",
            "source": "bookings@queenofsandiego.com",
            "messageId": str(uuid.uuid4()),
            "destination": [ADDRESS],
            "tags": tags,
        },
    }
    if event_type == "Bounce":
        event["bounce"] = {
            "bounceType": "Permanent",
            "bounceSubType": "General",
            "bouncedRecipients": [
                {
                    "emailAddress": ADDRESS,
                    "action": "failed",
                    "status": "5.1.1",
                    "diagnosticCode": f"smtp; 550 5.1.1 <{ADDRESS}>: user unknown",
                }
            ],
            "timestamp": "2026-11-28T09:00:01.000Z",
            "feedbackId": "0100-example",
        }
    elif event_type == "Complaint":
        event["complaint"] = {
            "complainedRecipients": [{"emailAddress": ADDRESS}],
            "complaintFeedbackType": "abuse",
        }
    else:
        event["delivery"] = {"recipients": [ADDRESS]}
    return event


@pytest.fixture(scope="module")
async def temporal() -> AsyncIterator[Client]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(Path(sys.executable).parent / "temporal"),
        ui=False,
        data_converter=data_converter(None),
        dev_server_extra_args=["--http-port", str(free_port()), "--metrics-port", str(free_port())],
    )
    try:
        yield env.client
    finally:
        await env.shutdown()


@pytest.fixture
def queue(moto_url: str, tmp_path: Path) -> tuple[Any, Any, str, str]:
    """Topic -> queue, as the template wires the configuration set's event destination."""
    settings = settings_for(moto_url, tmp_path)
    sns, sqs = client(settings, "sns"), client(settings, "sqs")
    topic = sns.create_topic(Name=f"ses-events-{uuid.uuid4().hex[:8]}")["TopicArn"]
    url = sqs.create_queue(QueueName=f"ses-events-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    return sns, sqs, topic, url


async def test_a_bounce_published_by_ses_reaches_the_workflow(
    temporal: Client, queue: tuple[Any, Any, str, str]
) -> None:
    sns, sqs, topic, url = queue
    workflow_id = f"charter-BNC{uuid.uuid4().hex[:6].upper()}"
    async with Worker(
        temporal,
        task_queue="bounces-test",
        workflows=[BounceRecorder],
        workflow_runner=UnsandboxedWorkflowRunner(),  # this module imports moto
    ):
        handle = await temporal.start_workflow(
            BounceRecorder.run, id=workflow_id, task_queue="bounces-test"
        )
        for event in (
            ses_event("Delivery", workflow_id, "jordan"),  # not a bounce: ignored
            ses_event("Complaint", "charter-GONE0000", "sam"),  # no such workflow: dropped
            ses_event("Bounce", None, None),  # an operations alert: cannot be mapped back
            ses_event("Bounce", workflow_id, "jordan"),
        ):
            sns.publish(TopicArn=topic, Message=json.dumps(event))
        stop = asyncio.Event()
        listener = asyncio.create_task(bounces.run(temporal, sqs, url, stop, wait_seconds=1))
        try:
            received = await asyncio.wait_for(handle.result(), 60)
        finally:
            stop.set()
            await asyncio.wait_for(listener, 30)

    assert len(received) == 1
    (bounce,) = received
    assert (bounce.crew_id, bounce.kind) == ("jordan", "bounce")
    assert "5.1.1" in bounce.reason and "Permanent" in bounce.reason
    assert ADDRESS not in bounce.reason
    left = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages", [])
    assert left == [], "handled messages must be deleted from the queue"


def test_raw_delivery_and_complaints_are_read_too() -> None:
    """With raw message delivery the SQS body is the SES event itself."""
    parsed = bounces.parse(json.dumps(ses_event("Complaint", "charter-ABCD1234", "sam")))
    assert parsed is not None
    assert parsed.workflow_id == "charter-ABCD1234"
    assert (parsed.event.crew_id, parsed.event.kind) == ("sam", "complaint")
    assert bounces.parse(json.dumps(ses_event("Delivery", "charter-ABCD1234", "sam"))) is None


# ---- what a bounce is, and who it was for ---------------------------------------------------

# SES guide, "Examples of event data that Amazon SES publishes to Amazon SNS", Bounce record
# (headers cut), with the tags our sends carry added to the `ses:*` tags SES adds itself.
DOCS_BOUNCE: dict[str, Any] = {
    "eventType": "Bounce",
    "bounce": {
        "bounceType": "Permanent",
        "bounceSubType": "General",
        "bouncedRecipients": [
            {
                "emailAddress": "recipient@example.com",
                "action": "failed",
                "status": "5.1.1",
                "diagnosticCode": "smtp; 550 5.1.1 user unknown",
            }
        ],
        "timestamp": "2017-08-05T00:41:02.669Z",
        "feedbackId": "01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000000",
        "reportingMTA": "dsn; mta.example.com",
    },
    "mail": {
        "timestamp": "2017-08-05T00:40:02.012Z",
        "source": "Sender Name <sender@example.com>",
        "sourceArn": "arn:aws:ses:us-east-1:123456789012:identity/sender@example.com",
        "sendingAccountId": "123456789012",
        "messageId": "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000",
        "destination": ["recipient@example.com"],
        "headersTruncated": False,
        "commonHeaders": {
            "from": ["Sender Name <sender@example.com>"],
            "to": ["Recipient Name <recipient@example.com>"],
            "messageId": "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000",
            "subject": "Message sent from Amazon SES",
        },
        "tags": {
            "ses:configuration-set": ["ConfigSet"],
            "ses:source-ip": ["192.0.2.0"],
            "ses:from-domain": ["example.com"],
            "ses:caller-identity": ["ses_user"],
        },
    },
}


def sns_envelope(event: dict[str, Any]) -> str:
    """How SNS hands the event to an SQS subscriber without raw delivery (SNS developer guide,
    "Amazon SNS message and JSON formats", notification)."""
    return json.dumps(
        {
            "Type": "Notification",
            "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:charters-mail-events",
            "Message": json.dumps(event),
            "Timestamp": "2017-08-05T00:41:02.700Z",
            "SignatureVersion": "1",
            "Signature": "EXAMPLEpH+...",
            "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService.pem",
            "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
        }
    )


def docs_bounce(
    tags: dict[str, str], bounce_type: str = "Permanent", sub_type: str = "General"
) -> dict[str, Any]:
    event = json.loads(json.dumps(DOCS_BOUNCE))
    event["mail"]["tags"].update({name: [value] for name, value in tags.items()})
    event["bounce"].update(bounceType=bounce_type, bounceSubType=sub_type)
    if bounce_type == "Transient":
        recipient = event["bounce"]["bouncedRecipients"][0]
        recipient.update(status="4.2.2", diagnosticCode="smtp; 452 4.2.2 Mailbox full")
    return event


CREW_TAGS = {"workflow_id": "charter-ABCD1234", "crew_id": "jordan", "kind": "invite"}


@pytest.mark.parametrize(
    ("bounce_type", "sub_type", "transient"),
    [
        ("Permanent", "General", False),
        ("Permanent", "Suppressed", False),
        ("Transient", "MailboxFull", True),
        ("Transient", "General", True),
        ("Transient", "MessageTooLarge", True),
        ("Undetermined", "Undetermined", False),
    ],
)
def test_transient_and_permanent_bounces_as_ses_reports_them(
    bounce_type: str, sub_type: str, transient: bool
) -> None:
    parsed = bounces.parse(sns_envelope(docs_bounce(CREW_TAGS, bounce_type, sub_type)))
    assert parsed is not None
    assert parsed.workflow_id == "charter-ABCD1234"
    event = parsed.event
    assert (event.recipient, event.crew_id, event.kind) == ("crew", "jordan", "bounce")
    assert event.transient is transient
    assert event.message_id == DOCS_BOUNCE["mail"]["messageId"]
    assert f"{bounce_type}/{sub_type}" in event.reason
    assert "recipient@example.com" not in event.reason


@pytest.mark.parametrize(
    ("tags", "recipient", "crew_id"),
    [
        ({"workflow_id": "charter-ABCD1234", "kind": "guest-reminder"}, "guest", None),
        ({"workflow_id": "charter-ABCD1234", "kind": "guest-thank-you"}, "guest", None),
        ({"workflow_id": "charter-ABCD1234", "kind": "ops-alert"}, "operations", None),
        (
            {"workflow_id": "charter-ABCD1234", "crew_id": "captain-1", "kind": "captain-summary"},
            "crew",
            "captain-1",
        ),
    ],
)
def test_the_recipient_kind_comes_from_the_sends_tags(
    tags: dict[str, str], recipient: str, crew_id: str | None
) -> None:
    parsed = bounces.parse(sns_envelope(docs_bounce(tags)))
    assert parsed is not None
    assert (parsed.event.recipient, parsed.event.crew_id) == (recipient, crew_id)


def test_mail_that_names_no_booking_is_not_delivered() -> None:
    """The docs' event as it is (only SES's own tags), and an alert sent before alerts named
    their workflow: nothing to signal."""
    assert bounces.parse(sns_envelope(DOCS_BOUNCE)) is None
    assert bounces.parse(sns_envelope(docs_bounce({"kind": "ops-alert"}))) is None
