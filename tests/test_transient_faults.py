"""Transient faults injected by the stack's latency/fault proxy between the worker and moto and
the stand-ins: retries, then completion with every effect once; a 4xx no retry can fix fails the
step non-retryably and says which."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from charters_dev.stack import DevStack

from charters import contract
from charters.actions import act, settled
from charters.models import ResolveBlock
from charters.settings import Settings
from charters.starter.book import validate
from charters.worker.wiring import AwsClients
from tests.conftest import Booker
from tests.support import booking_data, calendar_entries, eventually
from tests.test_crashes import assert_effects_once


@pytest.fixture
def faults(stack: DevStack) -> Iterator[DevStack]:
    for target in ("aws", "calendar", "scc"):
        stack.set_faults(target, "")
        stack.reset_fault_counters(target)
    yield stack
    for target in ("aws", "calendar", "scc"):
        stack.set_faults(target, "")


def injected(stack: DevStack, target: str) -> int:
    return int(stack.fault_counters(target)["faults_total"])


async def test_stand_ins_answering_5xx_and_throttling_then_recovering(
    faults: DevStack,
    booker: Booker,
    aws: AwsClients,
    settings: Settings,
) -> None:
    faults.set_faults("calendar", "error=1,kinds=503|500")
    faults.set_faults("scc", "error=1,kinds=throttle|503")
    data = booking_data()
    handle = await booker.start(data)
    await eventually(
        lambda: injected(faults, "calendar") >= 3 and injected(faults, "scc") >= 3,
        what="three faults on each stand-in",
    )
    seen = {t: faults.fault_counters(t) for t in ("calendar", "scc")}
    faults.set_faults("calendar", "")
    faults.set_faults("scc", "")
    await booker.answer_all(data["booking_ref"])
    assert (await settled(handle, 90)).outcome == "confirmed"
    assert_effects_once(aws, settings, data["booking_ref"], validate(data).page_slug)
    print(f"\nfaults injected before recovery: { {t: c['faults'] for t, c in seen.items()} }")


async def test_aws_throttling_5xx_and_resets_throughout_a_booking(
    faults: DevStack,
    booker: Booker,
    aws: AwsClients,
    settings: Settings,
) -> None:
    faults.set_faults("aws", "error=0.25,kinds=throttle|503|reset,seed=11")
    data = booking_data()
    handle = await booker.start(data)
    await booker.answer_all(data["booking_ref"])
    assert (await settled(handle, 120)).outcome == "confirmed"
    counters = faults.fault_counters("aws")
    faults.set_faults("aws", "")
    assert counters["faults_total"] > 0
    assert_effects_once(aws, settings, data["booking_ref"], validate(data).page_slug)
    print(f"\nAWS requests {counters['requests']}, faults {counters['faults']}")


async def test_answers_lost_after_the_effect_do_not_duplicate(
    faults: DevStack,
    booker: Booker,
    aws: AwsClients,
    settings: Settings,
) -> None:
    """The nastiest case: the calendar entry and SCC event are made, the answer never arrives."""
    faults.set_faults("calendar", "error=1,kinds=reset,after=1")
    faults.set_faults("scc", "error=1,kinds=503,after=1")
    data = booking_data()
    handle = await booker.start(data)
    await eventually(
        lambda: injected(faults, "calendar") >= 2 and injected(faults, "scc") >= 2,
        what="lost answers on both stand-ins",
    )
    faults.set_faults("calendar", "")
    faults.set_faults("scc", "")
    await booker.answer_all(data["booking_ref"])
    assert (await settled(handle, 90)).outcome == "confirmed"
    assert_effects_once(aws, settings, data["booking_ref"], validate(data).page_slug)


async def test_a_4xx_no_retry_can_fix_blocks_the_step_and_names_it(
    faults: DevStack,
    booker: Booker,
) -> None:
    faults.set_faults("calendar", "error=1,kinds=400")
    data = booking_data()
    handle = await booker.start(data)
    status = await booker.wait_blocked(handle.id, "calendar")
    assert "calendar failed for good" in (status.blocked_reason or "")
    assert "HTTP 400" in (status.blocked_reason or "")
    assert injected(faults, "calendar") == 1, "a 4xx is not retried"
    faults.set_faults("calendar", "")
    verdict = await act(booker.client, handle.id, contract.UPDATE_RESOLVE_BLOCK, ResolveBlock())
    assert verdict.recorded, verdict.message
    await booker.answer_all(data["booking_ref"])
    assert (await settled(handle, 60)).outcome == "confirmed"
    assert len(calendar_entries(booker.settings, data["booking_ref"])) == 1
