"""The SES mailbox simulator, played locally (SES guide, "Using the mailbox simulator").

Real SES answers a send to `bounce@simulator.amazonses.com` (also with a `+label`) with a
permanent bounce, published like any bounce through the configuration set's event destination:
SNS topic -> SQS queue -> the worker's bounce listener. moto accepts the send and publishes
nothing, and it drops the send's EmailTags, which the event must carry (`mail.tags`). The fault
proxy sits between the worker and moto and sees the SendEmail request whole, so it calls
`bounce_event` on each one it forwards and publishes what comes back on the stack's mail-events
topic. `success@simulator.amazonses.com` needs nothing: moto accepts it.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

SIMULATOR = "simulator.amazonses.com"
SEND_PATH = "/v2/email/outbound-emails"
_REGION = re.compile(rb"Credential=[^/]+/\d{8}/([a-z0-9-]+)/ses/")


def is_bounce_address(address: str) -> bool:
    local, _, domain = address.lower().partition("@")
    return domain == SIMULATOR and local.split("+", 1)[0] == "bounce"


def region_of(authorization: bytes) -> str | None:
    found = _REGION.search(authorization)
    return found.group(1).decode() if found else None


def bounce_event(body: bytes, message_id: str) -> dict[str, Any] | None:
    """The SES Bounce event for an SES v2 SendEmail request body, or None if no recipient is
    the simulator's bounce address."""
    try:
        request = json.loads(body)
    except ValueError:
        return None
    to = list((request.get("Destination") or {}).get("ToAddresses") or [])
    bounced = [a for a in to if is_bounce_address(a)]
    if not bounced:
        return None
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    tags: dict[str, list[str]] = {
        t["Name"]: [t["Value"]] for t in request.get("EmailTags") or [] if "Name" in t
    }
    if request.get("ConfigurationSetName"):
        tags["ses:configuration-set"] = [request["ConfigurationSetName"]]
    return {
        "eventType": "Bounce",
        "mail": {
            "timestamp": now,
            "source": request.get("FromEmailAddress", ""),
            "messageId": message_id,
            "destination": to,
            "tags": tags,
        },
        "bounce": {
            "bounceType": "Permanent",
            "bounceSubType": "General",
            "bouncedRecipients": [
                {
                    "emailAddress": a,
                    "action": "failed",
                    "status": "5.1.1",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                }
                for a in bounced
            ],
            "timestamp": now,
            "feedbackId": str(uuid.uuid4()),
        },
    }


def publish(upstream: str, region: str, event: dict[str, Any]) -> None:
    """Publishes the event on the stack's mail-events topic (infra/charters.yaml MailEventsTopic)
    in moto, as SES would through the configuration set's event destination."""
    import boto3

    sns = boto3.client(
        "sns",
        region_name=region,
        endpoint_url=upstream,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    topics = [t["TopicArn"] for t in sns.list_topics().get("Topics", [])]
    for arn in topics:
        if arn.endswith("-mail-events"):
            sns.publish(TopicArn=arn, Message=json.dumps(event))
