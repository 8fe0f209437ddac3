"""Holds: a gate in the proxy that keeps chosen requests in flight until a test releases them.

A hold is a named rule (method, substrings of the target, of the body, or of either, all of
which must match) armed at run time. Every request it matches waits at the gate until the hold is
released; a test knows a call has arrived from the hold's `arrived` counter. When to hold:

- `before` (the default): the request waits before it is forwarded, so the service has not acted
  yet. On release it is forwarded, unless its client went away while it waited (a killed worker,
  a client's read timeout): then it is dropped, as a request the network never delivered.
- `after`: the request is forwarded at once (the service acts) and its answer waits for the
  release: the caller's effect exists, the caller does not know it yet.

Releasing a hold disarms it (later requests pass) and lets everything it holds go on. Admin, on
every proxy port beside `/__faults`: `GET /__faults/holds` (every hold and its counters),
`PUT /__faults/holds` (a JSON HoldRule: arm), `DELETE /__faults/holds/{name}` (release one) and
`DELETE /__faults/holds` (release all)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

HOLDS_PATH = "/__faults/holds"
HOLDS = HOLDS_PATH.encode()


class HoldRule(BaseModel):
    """Which requests a hold keeps: all of `path` in the request target, all of `body` in its
    body, all of `anywhere` in one or the other (a look-up names the booking in its query, the
    create in its body), and the method when given."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="the hold's name, e.g. a booking ref and a step")
    method: str | None = Field(None, description="GET, POST, PUT, PATCH ... (None: any)")
    path: list[str] = Field(default_factory=list, description="substrings of the target")
    body: list[str] = Field(default_factory=list, description="substrings of the body")
    anywhere: list[str] = Field(default_factory=list, description="of the target or the body")
    phase: Literal["before", "after"] = "before"

    def matches(self, method: bytes, target: bytes, body: bytes) -> bool:
        if self.method is not None and method.decode("ascii").upper() != self.method.upper():
            return False
        return (
            all(p.encode() in target for p in self.path)
            and all(b.encode() in body for b in self.body)
            and all(a.encode() in target or a.encode() in body for a in self.anywhere)
        )


class Hold:
    def __init__(self, rule: HoldRule) -> None:
        self.rule = rule
        self.released = asyncio.Event()
        self.arrived = 0  # requests that met the gate
        self.waiting = 0  # of them, waiting now
        self.forwarded = 0  # went on to the service
        self.dropped = 0  # their client went away while they waited (never forwarded)

    def status(self) -> dict[str, Any]:
        return {
            "rule": self.rule.model_dump(),
            "released": self.released.is_set(),
            "arrived": self.arrived,
            "waiting": self.waiting,
            "forwarded": self.forwarded,
            "dropped": self.dropped,
        }


Forward = Callable[[], Awaitable[Any]]
ClientGone = Callable[[], Awaitable[None]]


class Gate:
    """The holds of one proxy."""

    def __init__(self) -> None:
        self._holds: dict[str, Hold] = {}

    def arm(self, rule: HoldRule) -> Hold:
        hold = self._holds.get(rule.name)
        if hold is not None and not hold.released.is_set():
            raise ValueError(f"hold {rule.name!r} is armed already")
        self._holds[rule.name] = hold = Hold(rule)
        return hold

    def release(self, name: str | None = None) -> list[str]:
        names = [name] if name is not None else list(self._holds)
        for each in names:
            if each not in self._holds:
                raise KeyError(each)
            self._holds[each].released.set()
        return names

    def status(self) -> dict[str, Any]:
        return {name: hold.status() for name, hold in self._holds.items()}

    def find(self, method: bytes, target: bytes, body: bytes) -> Hold | None:
        for hold in self._holds.values():
            if not hold.released.is_set() and hold.rule.matches(method, target, body):
                return hold
        return None

    async def pass_through(self, hold: Hold, forward: Forward, client_gone: ClientGone) -> Any:
        """Forwards the request across the hold (see the module's docstring); None when it was
        dropped because its client went away first."""
        hold.arrived += 1
        hold.waiting += 1
        try:
            if hold.rule.phase == "after":
                hold.forwarded += 1
                answer = await forward()
                await _first(hold.released.wait(), client_gone())
                return answer
            if not await _first(hold.released.wait(), client_gone()):
                hold.dropped += 1
                return None
            hold.forwarded += 1
            return await forward()
        finally:
            hold.waiting -= 1


async def _first(released: Awaitable[Any], gone: Awaitable[None]) -> bool:
    """Waits for the release or the client's going; True when released first."""
    release_task = asyncio.ensure_future(released)
    gone_task = asyncio.ensure_future(gone)
    try:
        await asyncio.wait({release_task, gone_task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (release_task, gone_task):
            task.cancel()
    return release_task.done() and not release_task.cancelled()


def holds_admin(gate: Gate, method: str, target: bytes, body: bytes) -> tuple[int, Any]:
    """The `/__faults/holds` endpoints: (status, JSON answer)."""
    name = target[len(HOLDS) :].lstrip(b"/").decode("latin-1") or None
    if method == "GET":
        return 200, gate.status()
    if method == "PUT":
        try:
            gate.arm(HoldRule.model_validate(json.loads(body or b"{}")))
        except (ValueError, ValidationError) as e:
            return 400, {"message": str(e)}
        return 200, gate.status()
    if method == "DELETE":
        try:
            gate.release(name)
        except KeyError:
            return 404, {"message": f"no hold {name!r}"}
        return 200, gate.status()
    return 405, {"message": "use GET, PUT or DELETE"}


def is_holds_admin(target: bytes) -> bool:
    return target == HOLDS or target.startswith(HOLDS + b"/")
