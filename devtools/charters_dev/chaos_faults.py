"""Permanent faults of a chaos run: faults no retry fixes, each open for a window, so bookings
hit them, block visibly (`BlockedOn=<step>`), and resume once the run applies the fix the way an
operator would, through the CLI:

- `scc-key-hash`: SERVICE_KEY_HASH removed from the SCC Lambda (the seeds' incident). Bookings
  block on `scc-service-key-hash`; fixed by `charters approve-repair <wf>` for the first one
  blocked and `charters ops fix-scc-key-hash` for the rest (the workflow polls the Lambda).
- `distribution-id`: a bad deploy: the workers rolled with a wrong CloudFront distribution id.
  Invalidations fail (NoSuchDistribution) until the step's retry budget is spent, then block on
  `invalidate`; fixed by rolling the workers back, then `charters retry <wf>` (update
  `resolve_block`) for each blocked booking.
- `ses-sender`: the sender's SES identity un-verified, so SES answers MessageRejected to every
  send (moto checks only the sender: a rejection of one recipient address would need the
  proxy). Emails block (`crew-email:<id>`, `captain-summary`); fixed by verifying the identity
  again, then `charters retry <wf>` for each blocked booking.

An operator only retries a block once its cause is fixed: while a window is open, and until the
fix has retried them, the blocks it causes are in `holding`, which the operators' loop leaves
alone (two people retrying one block: the second is refused as `not-blocked`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from charters import contract
from charters.settings import Settings
from charters.starter.failures import Exit
from charters.worker.wiring import aws_clients
from charters_dev.chaos_config import Tracked
from charters_dev.chaos_layers import WorkerPool
from charters_dev.stack import DevStack
from charters_dev.stack_config import settings_env

PERMANENT_KINDS = ("scc-key-hash", "distribution-id", "ses-sender")
BLOCKS = {
    "scc-key-hash": (contract.BLOCKED_SCC_KEY_HASH,),
    "distribution-id": ("invalidate",),
    "ses-sender": ("crew-email", "captain-summary", "thank-you"),
}
WRONG_DISTRIBUTION = "E0CHAOSWRONG00"


def blocks_of(kind: str, on: str) -> bool:
    return any(on == b or on.startswith(f"{b}:") for b in BLOCKS[kind])


# How long an operator keeps running a command while chaos has the server or the workers down.
DOWN_PATIENCE_SECONDS = 90.0


class PermanentFaults:
    def __init__(
        self,
        stack: DevStack,
        pool: WorkerPool,
        tracked: list[Tracked],
        window_seconds: float,
    ) -> None:
        self.stack = stack
        self.pool = pool
        self.tracked = tracked
        self.window_seconds = window_seconds
        self.holding: set[str] = set()
        self.log: list[dict[str, Any]] = []
        self.cli_errors: list[str] = []

    async def cli(self, *args: str, verdicts: tuple[str, ...] = ()) -> tuple[int, str]:
        """`charters ...` as an operator runs it, against this stack: run again while the server
        or every worker is down (chaos kills them), as the command's own message says. A refusal
        whose code is among `verdicts` is an answer, not an error. Returns the exit code and what
        it printed."""
        deadline = time.monotonic() + DOWN_PATIENCE_SECONDS
        while True:
            exit_code, text = await self._run_cli(*args)
            if exit_code not in (Exit.NO_SERVER, Exit.WORKER_DOWN) or time.monotonic() > deadline:
                break
            await asyncio.sleep(2)
        refused = exit_code == Exit.REFUSED and any(f"({v})" in text for v in verdicts)
        if exit_code != Exit.OK and not refused:
            self.cli_errors.append(f"charters {' '.join(args)}: exit {exit_code}: {text}")
        return exit_code, text

    async def _run_cli(self, *args: str) -> tuple[int, str]:
        env = {**self.stack.env(), **settings_env(self.stack.settings)}
        proc = await asyncio.create_subprocess_exec(
            *self.stack._charters(*args),
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        return proc.returncode or 0, out.decode(errors="replace").strip()

    def blocked(self, kind: str) -> list[Tracked]:
        """Bookings whose last status shows a block this fault causes."""
        found = []
        for t in self.tracked:
            if t.last is None or t.outcome is not None:
                continue
            if any(blocks_of(kind, b.on) for b in t.last.blocks) or (
                t.last.blocked_on and blocks_of(kind, t.last.blocked_on)
            ):
                found.append(t)
        return found

    async def run(self, kind: str) -> None:
        """Break, wait until bookings block on it (or the window ends), fix, resume."""
        entry: dict[str, Any] = {"kind": kind, "at": time.monotonic()}
        self.holding.update(BLOCKS[kind])
        await self._break(kind)
        deadline = time.monotonic() + self.window_seconds
        while time.monotonic() < deadline and not self.blocked(kind):
            await asyncio.sleep(0.5)
        await asyncio.sleep(2)  # a few more bookings run into it
        blocked = self.blocked(kind)
        entry["blocked"] = [t.ref for t in blocked]
        entry["open_s"] = round(time.monotonic() - entry.pop("at"), 1)
        await self._fix(kind, blocked)
        await asyncio.sleep(10)  # what resumes by itself once fixed has done so
        resumed = 0
        for t in self.blocked(kind) if kind != "scc-key-hash" else []:
            for on in {b.on for b in t.last.blocks if blocks_of(kind, b.on)} if t.last else ():
                await self.retry(t, on)
                resumed += 1
        # Held until retried, so the operators' loop does not retry the same blocks meanwhile.
        self.holding.difference_update(BLOCKS[kind])
        entry["retried"] = resumed
        self.log.append(entry)

    async def retry(self, t: Tracked, on: str) -> None:
        """`charters retry <wf> --step <on>`, as the operator runs it. The status it was read
        from may be a poll old: a step that went on by itself since is refused as not blocked."""
        exit_code, out = await self.cli(
            "retry", t.workflow_id, "--step", on, verdicts=(contract.REFUSED_NOT_BLOCKED,)
        )
        if exit_code == Exit.OK:
            code = "cli"
        elif f"({contract.REFUSED_NOT_BLOCKED})" in out:
            code = contract.REFUSED_NOT_BLOCKED
        else:
            code = f"exit {exit_code}"
        t.actions.append({"what": f"retry:{on}", "recorded": exit_code == Exit.OK, "code": code})

    async def _break(self, kind: str) -> None:
        settings = self.stack.settings
        aws = aws_clients(settings)
        if kind == "scc-key-hash":
            await self.cli("ops", "break-scc-key-hash")
        elif kind == "distribution-id":
            wrong = {"distribution_id": WRONG_DISTRIBUTION}
            await asyncio.to_thread(self.pool.roll, wrong)
        else:
            for identity in _identities(settings):
                await asyncio.to_thread(aws.sesv2.delete_email_identity, EmailIdentity=identity)

    async def _fix(self, kind: str, blocked: list[Tracked]) -> None:
        settings = self.stack.settings
        aws = aws_clients(settings)
        if kind == "scc-key-hash":
            if blocked:
                await self.cli("approve-repair", blocked[0].workflow_id)
            await self.cli("ops", "fix-scc-key-hash")
        elif kind == "distribution-id":
            await asyncio.to_thread(self.pool.roll, {})
        else:
            for identity in _identities(settings):
                await asyncio.to_thread(aws.sesv2.create_email_identity, EmailIdentity=identity)


def _identities(settings: Settings) -> list[str]:
    return [settings.mail_from.split("@", 1)[1], settings.mail_from]


def holding_check(faults: PermanentFaults | None) -> Callable[[str], bool]:
    """For the operators: is this block one a person must not retry yet?"""

    def held(on: str) -> bool:
        return faults is not None and any(on == b or on.startswith(f"{b}:") for b in faults.holding)

    return held
