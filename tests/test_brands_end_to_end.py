"""Two brands through the whole product on the local stack (Temporal, worker, moto, stand-ins):
a booking per brand, each page in its brand's bucket under its scheme, invalidated on its brand's
distribution, every email from its brand's sender; then `charters move-brand` moves the older
site's booking to the newer one: the page is live there, the old page is a notice linking to it,
the guest is told once, the Brand search attribute follows, and the crew's links still confirm."""

from __future__ import annotations

import asyncio
from typing import Any

from charters_dev.mailbox import Mail, Text, sent_mail, sent_sms
from typer.testing import CliRunner

from charters import contract
from charters.actions import settled
from charters.models import BookingResult
from charters.settings import Settings
from charters.starter.cli import app
from charters.worker.wiring import AwsClients
from tests.conftest import Booker
from tests.support import booking_data, eventually, mail_for, new_ref
from tests.workflow_harness import until

QUEEN, JADA = "queenofsandiego.com", "sailjada.com"
runner = CliRunner()


def page_text(aws: AwsClients, bucket: str, key: str) -> str:
    return str(aws.s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode())


def invalidated_paths(aws: AwsClients, distribution_id: str, ids: list[str]) -> list[str]:
    """The paths of the booking's invalidations that are on `distribution_id` (asked by id: a
    listing is paged, and the session's other tests fill it)."""
    paths: list[str] = []
    for invalidation_id in sorted(set(ids)):
        try:
            got = aws.cloudfront.get_invalidation(
                DistributionId=distribution_id, Id=invalidation_id
            )
        except aws.cloudfront.exceptions.NoSuchInvalidation:
            continue  # on the other brand's distribution
        paths += got["Invalidation"]["InvalidationBatch"]["Paths"]["Items"]
    return paths


def phone_for(ref: str) -> str:
    """A +1 619 555 number of the booking's own, never ending 99 (moto's opted-out numbers)."""
    spread = abs(hash(ref)) % 9900
    return f"+1619555{spread // 99:02d}{spread % 99:02d}"


async def what_it_made(booker: Booker, workflow_id: str) -> BookingResult:
    handle = booker.client.get_workflow_handle(workflow_id)
    result: BookingResult = await handle.query(contract.QUERY_RESULT, result_type=BookingResult)
    return result


async def test_a_booking_per_brand_and_a_move_from_the_older_site_to_the_newer(
    booker: Booker, settings: Settings, aws: AwsClients
) -> None:
    brands = settings.brand_book()
    endpoint = settings.aws_endpoint_url or ""
    bookings: dict[str, dict[str, Any]] = {}
    for brand in (QUEEN, JADA):
        data = booking_data(new_ref("BR"))
        data["brand"] = brand
        phone = phone_for(data["booking_ref"])
        data["crew"][0].update(phone=phone, sms=True)
        bookings[brand] = data
        await booker.start(data)
    for brand, data in bookings.items():
        site = brands.get(brand)
        workflow_id = contract.workflow_id_for(data["booking_ref"])
        await booker.wait_stage(workflow_id, "awaiting-crew", timeout=90)
        made = await what_it_made(booker, workflow_id)
        assert made.guest_page_url == site.page_url(data["slug"])
        assert made.guest_page_key == site.page_key(data["slug"])
        assert "Welcome aboard" in page_text(aws, site.bucket, made.guest_page_key)
        assert sorted(
            invalidated_paths(aws, site.distribution_id, made.invalidation_ids)
        ) == sorted(site.invalidation_paths(data["slug"]))
        ref = data["booking_ref"]

        def crew_emails(ref: str = ref) -> list[Mail] | None:
            found = mail_for(settings, ref)
            return found if len(found) >= 3 else None

        mails = await eventually(crew_emails, timeout=60, what=f"the crew emails of {brand}")
        assert {mail.sender for mail in mails} == {site.sender}
        phone = data["crew"][0]["phone"]

        def texts_to(phone: str = phone) -> list[Text]:
            return [t for t in sent_sms(endpoint) if t.to == phone]

        texts = await eventually(texts_to, timeout=60, what=f"the invitation text of {brand}")
        assert len(texts) == 1 and "/s/" in texts[0].body and "840" not in texts[0].body

    data = bookings[JADA]
    ref, slug = data["booking_ref"], data["slug"]
    workflow_id = contract.workflow_id_for(ref)
    jada, queen = brands.get(JADA), brands.get(QUEEN)
    moved = await asyncio.to_thread(runner.invoke, app, ["move-brand", workflow_id, QUEEN])
    assert moved.exit_code == 0, moved.output
    new_url = queen.page_url(slug)
    await until(lambda: _moved(booker, workflow_id, new_url), "the move applied", timeout=60)
    told = await eventually(
        lambda: [
            m for m in sent_mail(endpoint) if new_url in m.body and "new address" in m.subject
        ],
        timeout=60,
        what="the guest told of the move",
    )
    assert len(told) == 1 and told[0].sender == queen.sender
    assert "Welcome aboard" in page_text(aws, queen.bucket, queen.page_key(slug))
    notice = page_text(aws, jada.bucket, jada.page_key(slug))
    assert "has moved" in notice and f'href="{new_url}"' in notice
    made = await what_it_made(booker, workflow_id)
    assert invalidated_paths(aws, queen.distribution_id, made.invalidation_ids)
    assert len(invalidated_paths(aws, jada.distribution_id, made.invalidation_ids)) >= 2
    described = await booker.client.get_workflow_handle(workflow_id).describe()
    assert described.typed_search_attributes.get(contract.SA_BRAND) == QUEEN

    again = await asyncio.to_thread(runner.invoke, app, ["move-brand", workflow_id, QUEEN])
    assert again.exit_code != 0 and "already" in again.output
    # the crew's links are the confirmation server's: they still answer after the move
    await booker.answer_all(ref)
    result = await settled(booker.client.get_workflow_handle(workflow_id), 90)
    assert result.outcome == "confirmed" and result.guest_page_url == new_url


async def _moved(booker: Booker, workflow_id: str, new_url: str) -> bool:
    current = await booker.status(workflow_id)
    return current.guest_page_url == new_url and current.steps.get("brand_move") == "done"
