"""The same decisions with no workflow cache: every workflow task replays the booking's history
from the start, in the product's full sandbox (the helper modules imported and checked inside
it). A non-deterministic step, or one the sandbox refuses, fails here; the histories the replay
gate keeps cover fewer paths than these tests walk."""

from __future__ import annotations

import asyncio

from charters import contract
from charters.contract import Activity
from charters.models import ResolveBlock, Verdict
from tests.test_decisions_cancel import (
    assert_nothing_live,
    at_least,
    cancel,
    cancel_requests,
    closes_as_asked,
)
from tests.workflow_harness import (
    EMAIL_OF,
    MEMBERS,
    Harness,
    awaiting_crew,
    confirm,
    needs_test_server,
    result_of,
    until,
)

pytestmark = needs_test_server


async def test_a_block_retried_then_the_whole_life_replayed_at_every_task(wf: Harness) -> None:
    world = wf.world
    world.refuse_address(EMAIL_OF["crew-2"])
    data = await wf.charter(days_ahead=5)
    async with wf.worker(cached=False):
        handle = await wf.book(data)
        await until(lambda: world.alerts(), "the block alerted")
        world.accept_address(EMAIL_OF["crew-2"])
        verdict = await handle.execute_update(
            contract.UPDATE_RESOLVE_BLOCK,
            ResolveBlock(step="crew-email:crew-2"),
            result_type=Verdict,
        )
        assert verdict.recorded, verdict
        await until(lambda: len(world.mail_of("invite")) == 3, "everyone asked")
        for member in MEMBERS:
            await confirm(handle, member)
        result = await result_of(handle)
    assert result.outcome == "completed"
    assert len(world.mail_of("captain-summary")) == 1


async def test_a_cancel_in_flight_replayed_at_every_task(wf: Harness) -> None:
    world = wf.world
    page = world.hold(Activity.PUBLISH_GUEST_PAGE)
    redact = world.hold(Activity.REDACT_SCC_REVENUE)
    data = await wf.charter()
    async with wf.worker(cached=False):
        handle = await wf.book(data, local_activities=False)
        await page.started()
        await redact.started()
        await cancel(handle, "native")
        await until(lambda: at_least(cancel_requests(handle), 2), "both asked to cancel")
        page.release()
        redact.release()
        await closes_as_asked(handle, "native")
    assert_nothing_live(world, data)


async def test_side_by_side_local_steps_run_one_at_a_time_and_replay(wf: Harness) -> None:
    """Revenue redaction and the guest page run side by side as local activities. Two local
    results in one activation replay in another order than they ran (sdk-python#1578), so
    the page waits until the redaction is done; every task replays the history meanwhile."""
    world = wf.world
    redact = world.hold(Activity.REDACT_SCC_REVENUE)
    data = await wf.charter()
    async with wf.worker(cached=False):
        handle = await wf.book(data, local_activities=True)
        await redact.started()
        await asyncio.sleep(1.0)
        assert world.calls[Activity.PUBLISH_GUEST_PAGE.value] == 0, "two local steps at once"
        redact.release()
        await awaiting_crew(handle)
    assert world.calls[Activity.PUBLISH_GUEST_PAGE.value] == 1
