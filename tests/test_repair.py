"""A booking whose history the deployed code does not replay (the SDK's ordering failure of
test_cold_worker_update, or a change shipped without a patch) fails its workflow task on every
worker and moves no more. `status` says so with the fix, and `charters ops repair` resets it to
the last task the code replays: the answers received since are applied again, the steps since
run again without doing anything twice, and the booking goes on to confirmation.

The history is made not to replay the way a careless deploy would: the first worker runs the
booking with an interceptor that adds one command when a crew answer is handled, the next worker
runs the product as it is."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHandle
from temporalio.worker import (
    HandleUpdateInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from charters import contract
from charters.models import BookingResult, CrewConfirmation, Verdict
from charters.starter.cli import read_status
from charters.starter.failures import CliError, Exit
from charters.starter.repair import repair, stuck_break
from charters.worker.replay import HistoryReplay
from tests.workflow_harness import (
    answers,
    awaiting_crew,
    confirm,
    live_harness,
    status,
    until,
)


class DriftedInbound(WorkflowInboundInterceptor):
    async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
        if input.update == contract.UPDATE_CREW_CONFIRMATION:
            workflow.upsert_memo({"drifted": True})
        return await super().handle_update_handler(input)


class Drift(Interceptor):
    """What an undeclared change to the workflow does: one more command than the code makes."""

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        return DriftedInbound


async def answer(handle: WorkflowHandle[Any, Any], crew_id: str) -> Verdict:
    return await handle.execute_update(
        contract.UPDATE_CREW_CONFIRMATION,
        CrewConfirmation(crew_id=crew_id, decision="accept", by="crew"),
        result_type=Verdict,
    )


@pytest.mark.timeout(180)
async def test_a_booking_that_does_not_replay_is_reported_and_repaired() -> None:
    async with live_harness() as wf:
        data = await wf.charter()
        async with wf.worker(cached=False, interceptors=[Drift()]):
            handle = await wf.book(data)
            await awaiting_crew(handle)
            assert (await answer(handle, "captain-1")).recorded
        invitations = wf.world.effects["email.invite"]
        async with wf.worker(cached=False):
            await confirm(handle, "crew-1")  # a workflow task the product's code must replay
            found = await until(lambda: stuck_break(wf.client, handle.id), "stuck", 60)
            assert found.reset_to < found.event_id

            with pytest.raises(CliError) as stuck:
                await read_status(wf.client, wf.settings, handle.id)
            assert stuck.value.code == Exit.FAILED
            assert "is stuck" in stuck.value.message
            assert f"charters ops repair {handle.id}" in stuck.value.message

            line = await repair(wf.client, handle.id)
            assert f"reset to workflow task {found.reset_to}" in line

            current = await until(
                lambda: _answers_in(handle, {"captain-1", "crew-1"}), "both answers again", 60
            )
            assert current["captain-1"] == "accepted" and current["crew-1"] == "accepted"
            assert (await answer(handle, "crew-2")).recorded
            await until(lambda: _stage_is(handle, "confirmed"), "confirmed after the repair", 60)

            with pytest.raises(CliError) as again:
                await repair(wf.client, handle.id)
            assert again.value.code == Exit.REFUSED
            history = await handle.fetch_history()
        assert wf.world.effects["email.invite"] == invitations == 3
        assert wf.world.effects["email.captain-summary"] == 1
        assert len(wf.world.calendar_for(data["booking_ref"])) == 1
        assert await HistoryReplay(wf.client.data_converter).failure(history) is None


async def _answers_in(handle: WorkflowHandle[Any, Any], members: set[str]) -> dict[str, str]:
    try:
        current = answers(await status(handle))
    except Exception:  # noqa: BLE001 - the new run may not have answered its first query yet
        return {}
    accepted = {m for m, a in current.items() if a == "accepted"}
    return current if members <= accepted else {}


async def _stage_is(handle: WorkflowHandle[Any, BookingResult], stage: str) -> bool:
    return (await status(handle)).stage == stage
