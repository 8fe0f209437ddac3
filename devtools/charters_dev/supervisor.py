"""`charters dev` watches what it started: a child that dies is reported at once and restarted
with backoff; one that keeps dying (a crash loop) is reported and left down, never hidden. The
state of every child goes to stack.json, which `charters dev --status` reads."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from charters.settings import Settings
from charters_dev.ports import port_open
from charters_dev.stack import DevStack

BACKOFF = [1.0, 2.0, 4.0, 8.0, 16.0]
CRASH_LOOP = 5
"""Deaths within CRASH_WINDOW seconds that make a crash loop: the child is left down."""
CRASH_WINDOW = 120.0
NOT_RESTARTED = {"moto": "its state is in memory: restart `charters dev` to seed it again"}


def child_port(name: str, s: Settings) -> int | None:
    """The port a child serves, for `--status` and its health check."""
    return {
        "temporal": int(s.temporal_address.rpartition(":")[2]),
        "moto": s.moto_port,
        "standins": s.calendar_port,
        "faultproxy": s.proxy_aws_port,
        "worker": s.health_port or None,
        "codec": s.codec_port,
        "confirm": s.confirm_port,
    }.get(name)


@dataclass
class Child:
    name: str
    deaths: list[float] = field(default_factory=list)
    restarts: int = 0
    restart_at: float | None = None
    state: str = "running"


class Supervisor:
    """Polls the stack's children; `clock` and `sleep` are parameters so tests can drive it."""

    def __init__(
        self,
        stack: DevStack,
        console: Console,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stack = stack
        self.console = console
        self.clock = clock
        self.children = {name: Child(name) for name in stack.procs}

    def run(self, interval: float = 0.5) -> None:
        """Until Ctrl-C (KeyboardInterrupt) or SIGTERM (raised as KeyboardInterrupt)."""
        self.publish()
        while True:
            self.check()
            time.sleep(interval)

    def check(self) -> None:
        now = self.clock()
        changed = False
        for name, child in self.children.items():
            proc = self.stack.procs[name]
            if child.state == "running" and proc.poll() is not None:
                changed = True
                self.died(child, proc.pid, proc.returncode, now)
            elif child.state == "restarting" and now >= (child.restart_at or now):
                changed = True
                self.restart(child)
        if changed:
            self.publish()

    def died(self, child: Child, pid: int, code: int | None, now: float) -> None:
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit {code}"
        log = self.stack.log_dir / f"{child.name}.log"
        child.deaths = [t for t in child.deaths if t > now - CRASH_WINDOW] + [now]
        self.console.print(
            f"[bold red]{child.name} (pid {pid}) died ({how})[/]; log: {log}", highlight=False
        )
        if child.name in NOT_RESTARTED:
            child.state = "down"
            self.console.print(f"[red]{child.name} not restarted: {NOT_RESTARTED[child.name]}[/]")
            return
        if len(child.deaths) >= CRASH_LOOP:
            child.state = "crash-loop"
            self.console.print(
                f"[bold red]{child.name} is crash-looping ({len(child.deaths)} deaths in "
                f"{CRASH_WINDOW:.0f}s): left down; fix the cause (see {log}) and restart "
                "`charters dev`[/]",
                highlight=False,
            )
            return
        delay = BACKOFF[min(len(child.deaths) - 1, len(BACKOFF) - 1)]
        child.state, child.restart_at = "restarting", now + delay
        self.console.print(f"[yellow]restarting {child.name} in {delay:.0f}s[/]")

    def restart(self, child: Child) -> None:
        argv, settings = self.stack.specs[child.name]
        proc = self.stack._spawn(child.name, argv, settings)
        child.restarts += 1
        child.state, child.restart_at = "running", None
        self.console.print(
            f"[green]{child.name} restarted (pid {proc.pid}, restart {child.restarts})[/]",
            highlight=False,
        )

    def publish(self) -> None:
        procs = {
            name: {
                "pid": self.stack.procs[name].pid,
                "port": child_port(name, self.stack.settings),
                "state": child.state,
                "restarts": child.restarts,
            }
            for name, child in self.children.items()
        }
        self.stack.write_state(procs)


def health(name: str, info: dict[str, Any], settings: Settings) -> str:
    """`ok`, or what is wrong: no process, port closed, worker's /healthz failing."""
    try:
        os.kill(int(info["pid"]), 0)
    except (OSError, ValueError, KeyError):
        return f"no process ({info.get('state', '?')})"
    port = info.get("port")
    if port and not port_open(int(port)):
        return f"port {port} closed"
    if name == "worker" and port:
        try:
            answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=3)
        except httpx.HTTPError as exc:
            return f"/healthz: {type(exc).__name__}"
        if answer.status_code != 200:
            return f"/healthz answered {answer.status_code}"
    return "ok"


def stack_report(settings: Settings) -> list[dict[str, Any]] | None:
    """Each child of the stack running for this state dir, with its health; None: no stack."""
    info = DevStack.running(settings)
    if info is None:
        return None
    return [
        {"name": name, **child, "health": health(name, child, settings)}
        for name, child in info.get("procs", {}).items()
    ]


def show_report(console: Console, settings: Settings, as_json: bool) -> int:
    rows = stack_report(settings)
    if rows is None:
        console.print(f"No local stack runs for {settings.state_dir.resolve()}")
        return 1
    if as_json:
        print(json.dumps(rows, indent=1))
    else:
        table = Table("process", "pid", "port", "state", "restarts", "health", box=None)
        for row in rows:
            table.add_row(
                row["name"],
                str(row["pid"]),
                str(row["port"] or "-"),
                row["state"],
                str(row["restarts"]),
                row["health"],
            )
        console.print(table)
    return 0 if all(r["health"] == "ok" for r in rows) else 1
