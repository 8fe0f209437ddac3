"""A cancel at each stage, by `charters cancel`'s update and by a native cancel (the Web UI's
button): each compensation happens exactly once, counted in the emulated systems; people's later
actions get the workflow's verdict, never a silent "accepted"."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from charters_dev.seed import set_service_key_hash
from charters_dev.stack import DevStack
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle

from charters import contract
from charters.actions import act, settled
from charters.models import CancelBooking, CrewConfirmation
from charters.settings import Settings
from charters.starter.book import validate
from charters.worker.wiring import AwsClients
from tests.conftest import Booker
from tests.support import (
    NEWCOMER,
    booking_data,
    calendar_entries,
    invalidations_for,
    mail_for,
    scc_items,
)

MEMBERS = ["captain@sailjada.com", "alex@sailjada.com", "jordan@sailjada.com"]


async def cancel(booker: Booker, handle: WorkflowHandle[Any, Any], native: bool) -> None:
    if native:
        await handle.cancel()
        return
    verdict = await act(
        booker.client, handle.id, contract.UPDATE_CANCEL_BOOKING, CancelBooking(reason="guest")
    )
    assert verdict.recorded, verdict.message
    again = await act(booker.client, handle.id, contract.UPDATE_CANCEL_BOOKING, CancelBooking())
    assert not again.recorded and again.code in (
        contract.REFUSED_CANCELLED,
        contract.REFUSED_CLOSED,
    )


async def assert_compensated_once(
    booker: Booker,
    aws: AwsClients,
    handle: WorkflowHandle[Any, Any],
    data: dict[str, Any],
    native: bool,
    crew_told: list[str],
    scc_made: bool = True,
    page_published: bool = True,
) -> None:
    """`page_published=False`: the page's first put was cut short by the cancel, so the only
    publish (and invalidation) is the cancellation notice's."""
    settings = booker.settings
    ref, slug = data["booking_ref"], validate(data).page_slug
    result = await settled(handle, 90)
    described = await handle.describe()
    expected = WorkflowExecutionStatus.CANCELED if native else WorkflowExecutionStatus.COMPLETED
    assert described.status == expected
    assert result.outcome == "cancelled"
    entries = calendar_entries(settings, ref)
    assert len(entries) == 1 and entries[0]["status"] == "cancelled"
    items = scc_items(aws, settings, ref)
    if scc_made:
        assert len(items) == 1 and items[0]["status"] == "cancelled"
        page = aws.s3.get_object(Bucket=settings.guest_bucket, Key=f"guest-pages/{slug}.html")
        assert b"has been cancelled" in page["Body"].read()
        expected_invalidations = 2 if page_published else 1
        assert len(invalidations_for(aws, settings, slug)) == expected_invalidations, (
            "publish + cancellation" if page_published else "the cancellation only"
        )
    else:
        assert items == []
    told = [m for m in mail_for(settings, ref) if m.subject.startswith("Cancelled:")]
    assert sorted(r for m in told for r in m.to) == sorted(crew_told), "each member told once"
    status = await booker.status(handle.id)
    assert status.stage == "cancelled" and status.blocked_on is None
    assert "running" not in status.steps.values()


@pytest.mark.parametrize("native", [False, True], ids=["update", "native"])
async def test_cancel_while_provisioning(
    booker: Booker, aws: AwsClients, settings: Settings, native: bool
) -> None:
    set_service_key_hash(aws, settings, present=False)
    try:
        data = booking_data()
        handle = await booker.start(data)
        await booker.wait_blocked(handle.id, contract.BLOCKED_SCC_KEY_HASH)
        await cancel(booker, handle, native)
        await assert_compensated_once(booker, aws, handle, data, native, [], scc_made=False)
    finally:
        set_service_key_hash(aws, settings, present=True)


@pytest.mark.parametrize("native", [False, True], ids=["update", "native"])
async def test_cancel_while_awaiting_crew(booker: Booker, aws: AwsClients, native: bool) -> None:
    data = booking_data()
    handle = await booker.start(data)
    await booker.wait_stage(handle.id, "awaiting-crew")
    await cancel(booker, handle, native)
    await assert_compensated_once(booker, aws, handle, data, native, MEMBERS)


@pytest.mark.parametrize("native", [False, True], ids=["update", "native"])
async def test_cancel_after_the_crew_confirmed(
    booker: Booker, aws: AwsClients, native: bool
) -> None:
    """A guest who cancels a week after the crew confirmed still has something to cancel."""
    data = booking_data()
    handle = await booker.start(data)
    await booker.answer_all(data["booking_ref"])
    assert (await settled(handle, 60)).outcome == "confirmed"
    await cancel(booker, handle, native)
    await assert_compensated_once(booker, aws, handle, data, native, MEMBERS)
    late = await act(
        booker.client,
        handle.id,
        contract.UPDATE_CREW_CONFIRMATION,
        CrewConfirmation(crew_id="crew-1", decision="decline"),
    )
    assert not late.recorded
    assert late.code in (contract.REFUSED_CANCELLED, contract.REFUSED_CLOSED)


@pytest.fixture
def failing_guest_page(stack: DevStack) -> Iterator[DevStack]:
    """S3 answers the guest page's PUT with 503 (the session stack routes the worker through the
    fault proxy), so the booking stays in publishing: the local attempts spent, the step goes on
    as a regular activity, retrying, until the fault is lifted after the cancel."""
    stack.set_faults("aws", "error=1,kinds=503,match=Welcome aboard")
    try:
        yield stack
    finally:
        stack.set_faults("aws", "")


async def test_cancel_while_publishing(
    booker: Booker, aws: AwsClients, failing_guest_page: DevStack
) -> None:
    data = booking_data()
    handle = await booker.start(data)
    await booker.wait_stage(handle.id, "publishing", timeout=90)
    await cancel(booker, handle, native=False)
    failing_guest_page.set_faults("aws", "")
    await assert_compensated_once(booker, aws, handle, data, False, [], page_published=False)


async def test_verdicts_after_replacement_and_for_strangers(booker: Booker) -> None:
    data = booking_data()
    handle = await booker.start(data)
    await booker.wait_stage(handle.id, "awaiting-crew")
    assigned = await booker.assign(handle.id, "crew-1", NEWCOMER)
    assert assigned.recorded, assigned.message

    async def answer(crew_id: str, decision: str = "accept") -> Any:
        return await act(
            booker.client,
            handle.id,
            contract.UPDATE_CREW_CONFIRMATION,
            CrewConfirmation(crew_id=crew_id, decision=decision),  # type: ignore[arg-type]
        )

    await asyncio.sleep(0.5)
    replaced = await answer("crew-1")
    assert (replaced.recorded, replaced.code) == (False, contract.REFUSED_REPLACED)
    stranger = await answer("nobody")
    assert (stranger.recorded, stranger.code) == (False, contract.REFUSED_UNKNOWN_MEMBER)
    first = await answer("crew-2")
    assert first.recorded and "accepted" in first.message
    twice = await answer("crew-2")
    assert (twice.recorded, twice.code) == (False, contract.REFUSED_ALREADY_ANSWERED)
    unknown = await act(
        booker.client, "charter-NOSUCH0000", contract.UPDATE_CANCEL_BOOKING, CancelBooking()
    )
    assert (unknown.recorded, unknown.code) == (False, contract.REFUSED_UNKNOWN_BOOKING)
    await handle.cancel()
