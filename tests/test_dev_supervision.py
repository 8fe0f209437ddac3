"""`charters dev` supervises what it starts: kill -9 the worker under a running `charters dev`
and it is reported and restarted, and a booking made by hand in the same directory (no
CHARTERS_* exported) completes. A child that keeps dying is reported as a crash loop and left
down. The stack's files holding secrets are 0600."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from charters_dev.isolated import QUICK_RETRIES, isolated_settings, without_charters_env
from charters_dev.stack import DevStack
from charters_dev.stack_config import settings_env
from charters_dev.supervisor import CRASH_LOOP, Supervisor
from rich.console import Console

from charters.settings import Settings
from tests.support import booking_data, follow_link, mail_for, write_booking


def by_hand(cwd: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`charters ARGS` typed in the project directory: no CHARTERS_* in the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARTERS_")}
    return subprocess.run(
        [sys.executable, "-m", "charters", *args],
        cwd=cwd,
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def wait_until(check: Any, what: str, timeout: float = 180) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def processes(cwd: Path) -> dict[str, dict[str, Any]] | None:
    shown = by_hand(cwd, "dev", "--status", "--json")
    if shown.returncode != 0 or not shown.stdout.strip().startswith("["):
        return None
    return {row["name"]: row for row in json.loads(shown.stdout)}


@pytest.fixture
def dev(tmp_path: Path) -> Any:
    """`charters dev` in a project directory of its own, on free ports (CHARTERS_* overrides
    given to that one process only)."""
    settings = isolated_settings(tmp_path / ".charters", **QUICK_RETRIES)
    log = (tmp_path / "dev-console.log").open("w")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARTERS_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "charters", "dev"],
        cwd=tmp_path,
        env={**env, **settings_env(settings), "COLUMNS": "200"},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield tmp_path, settings, proc
    finally:
        children = processes(tmp_path) or {}
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
        for child in children.values():  # each runs in a session of its own: none may outlive
            with contextlib.suppress(ProcessLookupError, KeyError, TypeError, ValueError):
                os.kill(int(child["pid"]), signal.SIGKILL)


def test_killed_worker_is_restarted_and_a_booking_completes(dev: Any) -> None:
    cwd, settings, proc = dev
    console = cwd / "dev-console.log"
    procs = wait_until(lambda: processes(cwd), "the stack", timeout=240)
    assert wait_until(
        lambda: (processes(cwd) or {}).get("worker", {}).get("health") == "ok", "worker"
    )
    state = cwd / ".charters"
    for secret in ("stack.json", "stack.env", "codec.json"):
        mode = stat.S_IMODE((state / secret).stat().st_mode)
        assert mode == 0o600, f"{secret} is {oct(mode)}"

    old_pid = int(procs["worker"]["pid"])
    os.kill(old_pid, signal.SIGKILL)
    wait_until(lambda: "worker restarted" in console.read_text(), "the restart")
    text = console.read_text()
    assert f"worker (pid {old_pid}) died (killed by signal 9)" in text, text
    now = wait_until(
        lambda: (p := processes(cwd)) and p["worker"]["health"] == "ok" and p, "healthy worker"
    )
    assert now["worker"]["pid"] != old_pid and now["worker"]["restarts"] == 1
    assert proc.poll() is None

    data = booking_data()
    booked = by_hand(cwd, "book", str(write_booking(cwd, data)))
    assert booked.returncode == 0, booked.stderr
    wf = f"charter-{data['booking_ref']}"
    links = wait_until(
        lambda: (
            [m.magic_links() for m in mail_for(settings, data["booking_ref"]) if m.magic_links()]
            if len([m for m in mail_for(settings, data["booking_ref"]) if m.magic_links()]) >= 3
            else None
        ),
        "three crew emails",
    )
    for link in links:
        assert follow_link(link["accept"], "accept").status_code == 200

    def confirmed() -> bool:
        shown = by_hand(cwd, "status", wf, "--json")
        return shown.returncode == 0 and json.loads(shown.stdout)["stage"] in (
            "confirmed",
            "completed",
        )

    wait_until(confirmed, f"{wf} confirmed")


def test_a_crash_loop_is_reported_and_left_down(tmp_path: Path) -> None:
    """A child that dies every time it starts: restarted with growing delays, then reported as
    a crash loop and not restarted again (driven with a clock of its own, real processes)."""
    settings = Settings(state_dir=tmp_path)
    stack = DevStack(settings)
    stack._spawn("flaky", [sys.executable, "-c", "import sys; sys.exit(3)"])
    out = StringIO()
    now = [0.0]
    supervisor = Supervisor(stack, Console(file=out, width=200), clock=lambda: now[0])
    for _ in range(200):
        stack.procs["flaky"].wait(timeout=30)
        supervisor.check()
        now[0] += 20.0
        supervisor.check()
        if supervisor.children["flaky"].state == "crash-loop":
            break
    child = supervisor.children["flaky"]
    assert child.state == "crash-loop" and child.restarts == CRASH_LOOP - 1
    text = out.getvalue()
    assert text.count("died (exit 3)") == CRASH_LOOP and "crash-looping" in text
    info = json.loads((tmp_path / "stack.json").read_text())
    assert info["procs"]["flaky"]["state"] == "crash-loop"
    assert stat.S_IMODE((tmp_path / "stack.json").stat().st_mode) == 0o600
    stack.stop()


def test_hand_started_process_says_where_it_connects(tmp_path: Path) -> None:
    """No stack in this directory: the settings say so, and what they connect to."""
    with without_charters_env():
        settings = Settings(state_dir=tmp_path / ".charters")
    assert settings.local_stack_env() is None
    line = settings.connection_summary()
    assert "Temporal 127.0.0.1:7233" in line and "CHARTERS_* and defaults" in line


def test_a_child_that_dies_before_its_port_opens_fails_the_start_at_once(tmp_path: Path) -> None:
    """The fault proxy cannot bind its port (taken between choosing and binding it, as an
    outgoing connection can take it): the start fails at once with the proxy's own last line,
    not after a minute's wait with a bare timeout."""
    stack = DevStack(isolated_settings(tmp_path / ".charters"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", stack.settings.proxy_aws_port))
        started = time.monotonic()
        try:
            with pytest.raises(RuntimeError) as refused:
                stack._start_fault_proxy()  # noqa: SLF001 - the one part that start() runs here
        finally:
            stack.stop()
    assert time.monotonic() - started < 30
    assert "fault proxy aws did not come up: it exited with code" in str(refused.value)
    assert "in use" in str(refused.value)
