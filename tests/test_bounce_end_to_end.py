"""A crew invitation bounces, on the local stack built from infra/charters.yaml: SES's event
(in SES's own format) is published to the template's mail-events topic, moto delivers it to the
template's queue, the stack's worker (its bounce listener, started by CHARTERS_BOUNCE_QUEUE_URL
from the stack's outputs) signals the booking, and the booking's status shows that member's seat
blocked with the reason and the fix. moto's SES publishes no events itself: the test plays SES."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from charters.settings import Settings
from charters.worker.wiring import aws_client
from tests.conftest import Booker
from tests.support import booking_data, eventually, mail_for
from tests.test_ses_bounces import ses_event


def mail_events_topic(settings: Settings) -> str:
    """The topic the template subscribes the bounce queue to."""
    assert settings.bounce_queue_url, "the stack's outputs give CHARTERS_BOUNCE_QUEUE_URL"
    sqs, sns = aws_client(settings, "sqs"), aws_client(settings, "sns")
    arn = sqs.get_queue_attributes(QueueUrl=settings.bounce_queue_url, AttributeNames=["QueueArn"])
    queue_arn = arn["Attributes"]["QueueArn"]
    subs = sns.list_subscriptions()["Subscriptions"]
    return next(str(s["TopicArn"]) for s in subs if s["Endpoint"] == queue_arn)


async def test_a_bounced_invitation_blocks_the_members_seat(
    settings: Settings, booker: Booker
) -> None:
    topic = mail_events_topic(settings)
    data = booking_data()
    bouncing = data["crew"][1]["id"]
    handle = await booker.start(data)

    def invited() -> bool:
        mails = mail_for(settings, data["booking_ref"])
        return len([m for m in mails if m.magic_links()]) >= 3

    await eventually(invited, timeout=60, what="the crew invitations")
    event = ses_event("Bounce", handle.id, bouncing)
    aws_client(settings, "sns").publish(TopicArn=topic, Message=json.dumps(event))

    async def seat_blocked() -> Any:
        status = await booker.status(handle.id)
        return next((b for b in status.blocks if b.on == f"crew-email:{bouncing}"), None)

    block = None
    deadline = asyncio.get_running_loop().time() + 90
    while block is None and asyncio.get_running_loop().time() < deadline:
        block = await seat_blocked()
        await asyncio.sleep(0.5)
    try:
        assert block is not None, await booker.status(handle.id)
        assert "5.1.1" in block.reason and "bounce" in block.reason
        assert f"charters assign {handle.id} {bouncing}" in block.fix
    finally:
        await handle.terminate("test done")
