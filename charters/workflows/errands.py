"""Errands: sends that run beside the booking's main loop, one task per key. A reminder, an
invitation or an alert that blocks holds only its own errand; the loop and every other clock go
on. The set is a group: `cancel` cancels and awaits its errands, so none is left sending."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from temporalio import workflow

from charters.workflows.together import settle

Errand = Callable[[], Coroutine[Any, Any, None]]


class Errands:
    def __init__(self, on_finish: Callable[[], None]) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._on_finish = on_finish
        self._failure: BaseException | None = None
        self.starting = 0

    def start(self, key: str, errand: Errand) -> None:
        """Start `errand` under `key` unless one with that key is running."""
        running = self._tasks.get(key)
        if running is not None and not running.done():
            return
        self.starting += 1
        self._tasks[key] = asyncio.ensure_future(self._run(errand))

    async def _run(self, errand: Errand) -> None:
        """`starting` covers the errand from `start` until its first step has begun (a local
        activity then counts itself)."""
        self.starting -= 1
        try:
            await errand()
        except asyncio.CancelledError:
            raise
        except BaseException as err:
            # A bug, not a business failure (those block inside the errand): it fails the
            # workflow task from the main loop, where the SDK reports it.
            self._failure = self._failure or err
        finally:
            self._on_finish()

    def raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def running(self, key: str | None = None) -> bool:
        if key is not None:
            task = self._tasks.get(key)
            return task is not None and not task.done()
        return any(not task.done() for task in self._tasks.values())

    def keys(self) -> list[str]:
        return [key for key, task in self._tasks.items() if not task.done()]

    async def cancel(self, which: Callable[[str], bool] = lambda _key: True) -> None:
        """Cancel the running errands `which` selects and wait until they have settled."""
        chosen = [task for key, task in self._tasks.items() if which(key) and not task.done()]
        await settle(chosen)
        self._forget_done()

    async def wait_idle(self) -> None:
        """Wait until no errand runs (without cancelling any)."""
        while self.running():
            running = [task for task in self._tasks.values() if not task.done()]
            await workflow.wait(running)
        self._forget_done()

    def _forget_done(self) -> None:
        self._tasks = {key: task for key, task in self._tasks.items() if not task.done()}
