"""Free ports, open ports, and waiting for a process to come up."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(
    check: Any,
    what: str,
    timeout: float = 60.0,
    exited: Callable[[], str | None] | None = None,
) -> None:
    """Until `check()` is truthy; fails at once, with why, when `exited()` says the process that
    should answer is gone (a port taken between choosing and binding it, a bad argument)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - anything means "not yet"
            pass
        gone = exited() if exited is not None else None
        if gone is not None:
            raise RuntimeError(f"{what} did not come up: {gone}")
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not come up within {timeout:.0f}s")
