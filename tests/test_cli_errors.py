"""Every `charters` command through every foreseeable error, as an operator's shell runs it: one
line on stderr, no traceback, and the exit code of the README's table. Also the CLI run again
and again against a running stack, which once crashed at exit (segfault)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from charters_dev.ports import free_port
from charters_dev.stack import DevStack
from charters_dev.stack_config import settings_env
from temporalio.client import Client

from charters.settings import Settings
from charters.starter.failures import Exit
from tests.conftest import Booker
from tests.support import booking_data, new_ref, write_booking

ACTIONS = [
    ["confirm", "{wf}", "crew-1"],
    ["assign", "{wf}", "crew-1", "{member}"],
    ["cancel", "{wf}"],
    ["reschedule", "{wf}", "--starts-at", "2031-05-30T10:00"],
    ["approve-repair", "{wf}"],
    ["retry", "{wf}"],
]
READS = [["status", "{wf}"], ["result", "{wf}"]]
REPAIR = [["ops", "repair", "{wf}"]]


def command_name(argv: list[str]) -> str:
    return "-".join(argv[:2]) if argv[0] == "ops" else argv[0]


def charters(
    env: dict[str, str], *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`charters ARGS` in a shell of its own, with exactly the given CHARTERS_* settings."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CHARTERS_")}
    return subprocess.run(
        [sys.executable, "-m", "charters", *args],
        env={**clean, **env, "COLUMNS": "80"},
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=Path(env["CHARTERS_STATE_DIR"]).parent,
    )


def assert_one_line(shown: subprocess.CompletedProcess[str], code: Exit, *needles: str) -> None:
    lines = shown.stderr.splitlines()
    assert shown.returncode == int(code), (shown.returncode, shown.stderr, shown.stdout)
    assert len(lines) == 1, shown.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in shown.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def fill(argv: list[str], **values: str) -> list[str]:
    return [a.format(**values) for a in argv]


@pytest.fixture(scope="module")
def env(stack: DevStack) -> dict[str, str]:
    return settings_env(stack.settings)


@pytest.fixture(scope="module")
def member(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("member") / "member.json"
    path.write_text(
        json.dumps({"id": "sam", "name": "Sam Sub", "email": "sam@example.com", "hourly_rate": 30})
    )
    return str(path)


@pytest.fixture(scope="module")
async def running_wf(booker: Booker) -> str:
    handle = await booker.start(booking_data())
    await booker.wait_stage(handle.id, "awaiting-crew")
    return handle.id


@pytest.fixture(scope="module")
async def closed_wf(booker: Booker, client: Client) -> str:
    handle = await booker.start(booking_data())
    await client.get_workflow_handle(handle.id).terminate("test: a closed booking")
    return handle.id


@pytest.mark.parametrize("argv", ACTIONS + READS + REPAIR, ids=command_name)
def test_no_temporal_server(env: dict[str, str], member: str, argv: list[str]) -> None:
    port = free_port()
    nowhere = {**env, "CHARTERS_TEMPORAL_ADDRESS": f"127.0.0.1:{port}"}
    shown = charters(nowhere, *fill(argv, wf="charter-X", member=member))
    assert_one_line(shown, Exit.NO_SERVER, f"127.0.0.1:{port}")


def test_no_temporal_server_for_list_and_book(
    env: dict[str, str], tmp_path: Path, settings: Settings
) -> None:
    nowhere = {**env, "CHARTERS_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"}
    assert_one_line(charters(nowhere, "list"), Exit.NO_SERVER, "no Temporal server")
    booking = write_booking(tmp_path, booking_data())
    assert_one_line(charters(nowhere, "book", str(booking)), Exit.NO_SERVER, "charters dev")


@pytest.mark.parametrize("argv", ACTIONS + READS + REPAIR, ids=command_name)
def test_unknown_workflow(env: dict[str, str], member: str, argv: list[str]) -> None:
    shown = charters(env, *fill(argv, wf="charter-NOSUCH1", member=member))
    assert_one_line(shown, Exit.UNKNOWN_WORKFLOW, "charter-NOSUCH1")


@pytest.mark.parametrize("argv", ACTIONS + REPAIR, ids=command_name)
def test_closed_booking(env: dict[str, str], member: str, closed_wf: str, argv: list[str]) -> None:
    shown = charters(env, *fill(argv, wf=closed_wf, member=member))
    assert_one_line(shown, Exit.CLOSED, closed_wf, "terminated")


@pytest.mark.parametrize("argv", ACTIONS + READS, ids=lambda a: a[0])
def test_worker_down(env: dict[str, str], member: str, running_wf: str, argv: list[str]) -> None:
    """No worker polls the task queue these settings name: the command says how to start one
    instead of waiting on a workflow nobody runs."""
    unserved = {**env, "CHARTERS_TASK_QUEUE": "nobody-polls-this"}
    shown = charters(unserved, *fill(argv, wf=running_wf, member=member))
    assert_one_line(shown, Exit.WORKER_DOWN, "nobody-polls-this", "charters worker")


def test_book_worker_down_exists_and_invalid(
    env: dict[str, str], tmp_path: Path, running_wf: str
) -> None:
    data = booking_data()
    path = write_booking(tmp_path, data)
    unserved = {**env, "CHARTERS_TASK_QUEUE": "nobody-polls-this"}
    assert_one_line(charters(unserved, "book", str(path)), Exit.WORKER_DOWN, "charters worker")
    first = charters(env, "book", str(path))
    assert first.returncode == 0, first.stderr
    assert_one_line(charters(env, "book", str(path)), Exit.EXISTS, data["booking_ref"])
    bad = write_booking(tmp_path, booking_data(new_ref(), duration_hours="-1"))
    assert_one_line(charters(env, "book", str(bad)), Exit.USAGE, "duration_hours")
    assert_one_line(charters(env, "book", str(tmp_path / "none.yaml")), Exit.USAGE, "no booking")
    loss = booking_data(new_ref(), money={"gross": "$100", "fees": {"boatsetter_fee": "150"}})
    shown = charters(env, "book", str(write_booking(tmp_path, loss)))
    assert_one_line(shown, Exit.USAGE, "money.fees.boatsetter_fee", "money.gross", "allow_loss")


BAD_OPTIONS: list[tuple[list[str], str]] = [
    (["list", "--stage", "bogus"], "awaiting-crew"),
    (["list", "--date", "2027-02-31"], "2027-02-31"),
    (["list", "--blocked-on", "x' OR 1=1"], "--blocked-on"),
    (["list", "--limit", "many"], "--limit"),
    (["reschedule", "{wf}", "--starts-at", "2027-02-31T10:00"], "2027-02-31"),
    (["reschedule", "{wf}", "--starts-at", "2031-05-30T10:00", "--duration-hours", "x"], "hours"),
    (["assign", "{wf}", "crew-1", "/no/such/member.yaml"], "member"),
    (["confirm", "{wf}"], "CREW_ID"),
    (["no-such-command"], "no-such-command"),
]


@pytest.mark.parametrize(("argv", "needle"), BAD_OPTIONS, ids=lambda a: str(a)[:30])
def test_bad_option_values(
    env: dict[str, str], running_wf: str, argv: list[str], needle: str
) -> None:
    shown = charters(env, *fill(argv, wf=running_wf))
    assert_one_line(shown, Exit.USAGE)
    assert needle.lower() in shown.stderr.lower(), shown.stderr


def test_refused_action_prints_the_verdict(env: dict[str, str], running_wf: str) -> None:
    shown = charters(env, "approve-repair", running_wf)
    assert_one_line(shown, Exit.REFUSED, "not-blocked")


def test_repair_refuses_a_booking_that_replays(env: dict[str, str], running_wf: str) -> None:
    shown = charters(env, "ops", "repair", running_wf)
    assert_one_line(shown, Exit.REFUSED, running_wf, "nothing to repair", "charters retry")


def test_stage_names_match_case_insensitively(env: dict[str, str], running_wf: str) -> None:
    for _ in range(20):
        shown = charters(env, "list", "--stage", "Awaiting Crew", "--json")
        assert shown.returncode == 0, shown.stderr
        rows = json.loads(shown.stdout)
        assert all(r["stage"] == "awaiting-crew" for r in rows)
        if running_wf in [r["workflow_id"] for r in rows]:
            return
    raise AssertionError(f"{running_wf} not listed as awaiting-crew")


def test_debug_shows_the_traceback(env: dict[str, str]) -> None:
    shown = charters(env, "--debug", "status", "charter-NOSUCH2")
    assert shown.returncode != 0 and "Traceback" in shown.stderr


def test_repeated_runs_against_a_running_stack_exit_cleanly(
    env: dict[str, str], running_wf: str
) -> None:
    """The CLI once died of SIGSEGV at exit (interpreter finalization with the SDK core's
    threads); it now leaves through os._exit. Run it again and again: every exit is clean."""
    codes: list[Any] = []
    for _ in range(3):
        for argv in (["status", running_wf], ["list", "--json"], ["status", running_wf, "--json"]):
            shown = charters(env, *argv)
            codes.append(shown.returncode)
            assert shown.returncode == 0, (argv, shown.returncode, shown.stderr)
            assert "Fatal Python error" not in shown.stderr
    assert set(codes) == {0}


def test_demo_exit_when_done_against_a_running_stack_repeatedly(env: dict[str, str]) -> None:
    """`charters demo --exit-when-done` against a running stack (it crashed with SIGSEGV once in
    nine runs): the first run books the seed charter, the next follow it; all exit 0, none by a
    signal, and faulthandler (enabled in `main`) never reports a fatal error."""
    seed = Path(__file__).resolve().parent.parent / "examples" / "seed-charter.yaml"
    for run in range(3):
        shown = charters(env, "demo", "--exit-when-done", "--file", str(seed), timeout=240)
        assert shown.returncode == 0, (run, shown.returncode, shown.stdout[-2000:], shown.stderr)
        assert "Fatal Python error" not in shown.stderr and "Result of" in shown.stdout
