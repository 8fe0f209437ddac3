"""`charters status` tells the whole truth (retries with attempt, last error and next attempt;
each step after a cancel) and `charters list` reads at 80 columns, both with `--json`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from charters_dev.stack import DevStack
from charters_dev.stack_config import settings_env

from tests.conftest import Booker
from tests.support import booking_data
from tests.test_cli_errors import charters


@pytest.fixture
def scc_down(stack: DevStack) -> Iterator[DevStack]:
    stack.set_faults("scc", "error=1,kinds=503")
    try:
        yield stack
    finally:
        stack.set_faults("scc", "")


def status_json(env: dict[str, str], workflow_id: str) -> dict[str, Any]:
    shown = charters(env, "status", workflow_id, "--json")
    assert shown.returncode == 0, shown.stderr
    return dict(json.loads(shown.stdout))


async def test_status_shows_a_retried_step_with_attempt_error_and_next_time(
    scc_down: DevStack, booker: Booker
) -> None:
    env = settings_env(scc_down.settings)
    handle = await booker.start(booking_data())
    for _ in range(120):
        shown = await asyncio.to_thread(status_json, env, handle.id)
        retrying = [r for r in shown["retries"] if r["attempt"] >= 2 and r["last_error"]]
        if retrying:
            break
        await asyncio.sleep(0.5)
    else:
        raise AssertionError(f"no retry shown: {shown}")
    retry = retrying[0]
    assert "scc" in retry["activity"].lower()
    assert "503" in retry["last_error"] and "\n" not in retry["last_error"]
    assert retry["next_attempt_at"] is not None
    # The text view shows the same retry; read it while the step waits for its next attempt
    # (while an attempt runs there is no next attempt to show).
    for _ in range(20):
        text = await asyncio.to_thread(charters, env, "status", handle.id)
        if "last error:" in text.stdout and "next attempt" in text.stdout:
            break
        await asyncio.sleep(0.3)
    assert "attempt" in text.stdout
    assert "last error:" in text.stdout and "next attempt" in text.stdout
    scc_down.set_faults("scc", "")
    verdict = await asyncio.to_thread(charters, env, "cancel", handle.id)
    assert verdict.returncode == 0, verdict.stderr


async def test_after_a_cancel_no_step_is_left_running(stack: DevStack, booker: Booker) -> None:
    env = settings_env(stack.settings)
    handle = await booker.start(booking_data())
    await booker.wait_stage(handle.id, "awaiting-crew")
    cancelled = await asyncio.to_thread(charters, env, "cancel", handle.id, "--reason", "storm")
    assert cancelled.returncode == 0, cancelled.stderr
    assert handle.id in cancelled.stdout
    for _ in range(120):
        shown = await asyncio.to_thread(status_json, env, handle.id)
        if shown["stage"] == "cancelled":
            break
        await asyncio.sleep(0.5)
    assert shown["stage"] == "cancelled", shown
    assert not [s for s, state in shown["steps"].items() if state in ("running", "retrying")]
    assert {"compensated", "cancelled", "skipped"} & set(shown["steps"].values()), shown["steps"]
    again = await asyncio.to_thread(charters, env, "cancel", handle.id)
    assert again.returncode != 0 and len(again.stderr.splitlines()) == 1


async def test_list_at_80_columns_keeps_every_id_whole(stack: DevStack, booker: Booker) -> None:
    env = settings_env(stack.settings)
    handle = await booker.start(booking_data())
    for _ in range(40):
        listed = await asyncio.to_thread(charters, env, "list", "--limit", "500")
        if handle.id in listed.stdout:
            break
        await asyncio.sleep(0.5)
    assert handle.id in listed.stdout, listed.stdout
    assert max(len(line) for line in listed.stdout.splitlines()) <= 80
    assert "…" not in listed.stdout.split("query:")[0]
    rows = json.loads((await asyncio.to_thread(charters, env, "list", "--json")).stdout)
    assert {"workflow_id", "booking_ref", "stage", "status"} <= set(rows[0])


async def test_a_decline_blocks_with_the_member_and_the_command(
    stack: DevStack, booker: Booker
) -> None:
    env = settings_env(stack.settings)
    handle = await booker.start(booking_data())
    await booker.wait_stage(handle.id, "awaiting-crew")
    declined = await asyncio.to_thread(charters, env, "confirm", handle.id, "crew-2", "--decline")
    assert declined.returncode == 0, declined.stderr
    for _ in range(120):
        shown = await asyncio.to_thread(status_json, env, handle.id)
        if shown["blocks"]:
            break
        await asyncio.sleep(0.5)
    fixes = [b["fix"] for b in shown["blocks"]]
    assert any(f"charters assign {handle.id} crew-2" in fix for fix in fixes), shown["blocks"]
    text = await asyncio.to_thread(charters, env, "status", handle.id)
    assert "Blocked on" in text.stdout and f"charters assign {handle.id} crew-2" in text.stdout
