"""Stacks kept apart from `charters dev` (the test suite's, the bench's, the chaos run's): every
port free, the state in a directory of their own, nothing from the caller's `CHARTERS_*`; and the
sample charter they book, the seeds' shape."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from charters.settings import Settings
from charters_dev.ports import free_port
from charters_dev.stack import DevStack

QUICK_RETRIES: dict[str, Any] = {
    "scc_retry_max_interval_seconds": 2.0,
    "activity_max_interval_seconds": 2.0,
    "activity_timeout_seconds": 10.0,
}
"""Short retry intervals and activity timeouts: a killed worker's activities, or a repaired
SCC key, are picked up within seconds instead of minutes."""


@contextlib.contextmanager
def without_charters_env() -> Iterator[None]:
    """No CHARTERS_* of the caller's shell or running stack leaks into what starts inside."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("CHARTERS_")}
    for key in saved:
        del os.environ[key]
    try:
        yield
    finally:
        os.environ.update(saved)


def isolated_settings(state_dir: Path, **overrides: Any) -> Settings:
    """Settings for a stack of its own: every port free, the state in `state_dir`."""
    names = ["temporal", "ui", "moto", "calendar", "scc", "scc_cf", "confirm", "codec", "edge"]
    names += ["health", "proxy_aws", "proxy_calendar", "proxy_scc"]
    ports = {name: free_port() for name in names}
    local = "http://127.0.0.1"
    with without_charters_env():
        return Settings(
            state_dir=state_dir,
            temporal_address=f"127.0.0.1:{ports['temporal']}",
            temporal_ui_port=ports["ui"],
            temporal_ui_url=f"{local}:{ports['ui']}",
            moto_port=ports["moto"],
            aws_endpoint_url=f"{local}:{ports['moto']}",
            calendar_port=ports["calendar"],
            calendar_url=f"{local}:{ports['calendar']}",
            scc_port=ports["scc"],
            scc_api_url=f"{local}:{ports['scc']}/prod",
            scc_cloudfront_port=ports["scc_cf"],
            edge_port=ports["edge"],
            confirm_port=ports["confirm"],
            confirm_base_url=f"{local}:{ports['confirm']}",
            codec_port=ports["codec"],
            health_port=ports["health"],
            proxy_aws_port=ports["proxy_aws"],
            proxy_calendar_port=ports["proxy_calendar"],
            proxy_scc_port=ports["proxy_scc"],
            **overrides,
        )


def start_isolated_stack(
    state_dir: Path, attempts: int = 3, worker: bool = True, **overrides: Any
) -> DevStack:
    """A fresh stack of its own, started. A port found free can be taken before the stack binds
    it (other stacks choose theirs the same way, and an outgoing connection takes its source port
    from the same range): the part that lost the race does not come up, what started is
    stopped, and the stack starts again on new ports in a directory of its own."""
    for attempt in range(1, attempts):
        stack = DevStack(
            isolated_settings(state_dir / f"stack-{attempt}", **overrides),
            worker=worker,
            fresh=True,
        )
        try:
            return stack.start()  # stops what it started when a part fails
        except RuntimeError:
            continue
    last = isolated_settings(state_dir / f"stack-{attempts}", **overrides)
    return DevStack(last, worker=worker, fresh=True).start()


def sample_charter(
    ref: str, *, guest_name: str = "Boatsetter Guest", notes: str = "Birthday celebration"
) -> dict[str, Any]:
    """The seeds' charter as a booking file would hold it: 3 hours from Sheraton Marina in 30
    days, $840.75 gross, a captain at $50/h and two crew at $25/h."""
    starts = (datetime.now() + timedelta(days=30)).replace(
        hour=9, minute=0, second=0, microsecond=0
    )
    crew = [("crew-1", "Alex Rivera", "alex"), ("crew-2", "Jordan Lee", "jordan")]
    return {
        "booking_ref": ref,
        "starts_at": starts.isoformat(),
        "timezone": "America/Los_Angeles",
        "duration_hours": "3",
        "location": "Sheraton Marina",
        "guest": {"name": guest_name, "email": "guest@example.com", "party_size": 6},
        "captain": {
            "id": "captain-1",
            "name": "Sam Harbor",
            "email": "captain@sailjada.com",
            "hourly_rate": "50.00",
        },
        "crew": [
            {"id": i, "name": n, "email": f"{e}@sailjada.com", "hourly_rate": "25.00"}
            for i, n, e in crew
        ],
        "money": {"gross": "840.75", "fees": {"boatsetter_fee": "201.34", "port_fee": "50.00"}},
        "notes": notes,
    }
