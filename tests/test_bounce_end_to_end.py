"""A crew invitation bounces: SES's event (in its own format) goes SNS -> SQS on the local
stack's moto, the worker's listener signals the booking, and the booking's status shows that
member's seat blocked with the reason and the fix."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from temporalio.client import Client

from charters.settings import Settings
from charters.worker import bounces
from charters.worker.wiring import aws_client
from tests.conftest import Booker
from tests.support import booking_data, eventually, mail_for
from tests.test_ses_bounces import ses_event


async def test_a_bounced_invitation_blocks_the_members_seat(
    client: Client, settings: Settings, booker: Booker
) -> None:
    sns, sqs = aws_client(settings, "sns"), aws_client(settings, "sqs")
    topic = sns.create_topic(Name=f"ses-events-{uuid.uuid4().hex[:8]}")["TopicArn"]
    url = sqs.create_queue(QueueName=f"ses-events-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)

    data = booking_data()
    bouncing = data["crew"][1]["id"]
    handle = await booker.start(data)
    await eventually(
        lambda: len([m for m in mail_for(settings, data["booking_ref"]) if m.magic_links()]) >= 3,
        timeout=60,
        what="the crew invitations",
    )
    sns.publish(TopicArn=topic, Message=json.dumps(ses_event("Bounce", handle.id, bouncing)))
    stop = asyncio.Event()
    listener = asyncio.create_task(bounces.run(client, sqs, url, stop, wait_seconds=1))
    try:

        async def seat_blocked() -> Any:
            status = await booker.status(handle.id)
            return next((b for b in status.blocks if b.on == f"crew-email:{bouncing}"), None)

        deadline = asyncio.get_running_loop().time() + 60
        block = None
        while block is None and asyncio.get_running_loop().time() < deadline:
            block = await seat_blocked()
            await asyncio.sleep(0.3)
    finally:
        stop.set()
        await asyncio.wait_for(listener, 30)
    assert block is not None, await booker.status(handle.id)
    assert "5.1.1" in block.reason and "bounce" in block.reason
    assert f"charters assign {handle.id} {bouncing}" in block.fix
    await handle.terminate("test done")
