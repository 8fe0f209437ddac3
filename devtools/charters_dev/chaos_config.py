"""What a chaos run is made of: its size, the transient faults on the network, the schedule of
disruptions (Temporal server kills, worker kills, rolling deploys) and the bookings it books."""

from __future__ import annotations

import random
import secrets
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from charters.models import Booking, BookingResult, BookingStatus
from charters_dev.chaos_operators import Plan
from charters_dev.isolated import sample_charter

PROXY_TARGETS = ("aws", "calendar", "scc")
FAULT_KINDS = "500|503|throttle|reset|slow"
FINAL_STAGES = ("confirmed", "cancelled", "failed")


@dataclass
class ChaosConfig:
    """The defaults are `make chaos`: sized for about 5 minutes on 2 cores."""

    bookings: int = 200
    kills: int = 5
    server_kills: int = 2
    workers: int = 2
    rolls: int = 1
    fault_rate: float = 0.1
    seed: int = 1
    concurrency: int = 20
    slow_ms: float = 300.0
    down_seconds: tuple[float, float] = (0.5, 2.0)
    server_down_seconds: tuple[float, float] = (0.5, 3.0)
    # While faults are on, a booking gets this long before its slot moves on; what is left is
    # waited for after the faults are off, for up to `final_timeout_seconds`.
    booking_timeout_seconds: float = 150.0
    final_timeout_seconds: float = 240.0
    poll_seconds: float = 0.5
    out_dir: Path = Path("bench-results")
    keep_state: bool = False
    # Count duplicates of the documented SES window (see `chaos_report.classify`) as duplicates.
    strict: bool = False
    # Share of bookings on which people act (declines, reschedules, cancels, second starts).
    operator_share: float = 0.15
    # Transient retries of one step before it blocks for a person (production: 600 s).
    step_budget_seconds: float = 45.0
    # Permanent faults, each opened once at a random moment (see chaos_faults.py).
    permanent: tuple[str, ...] = ("scc-key-hash", "distribution-id", "ses-sender")

    def fault_spec(self, target: str) -> str:
        offset = PROXY_TARGETS.index(target)
        return (
            f"error={self.fault_rate:g},kinds={FAULT_KINDS},slow={self.slow_ms:g},"
            f"seed={self.seed * 10 + offset}"
        )


@dataclass(order=True)
class Disruption:
    """One event of the schedule: it fires once `after_finished` bookings have finished, plus
    `delay` seconds (so it lands at a random moment of a booking's life, not between them)."""

    after_finished: int
    delay: float
    kind: str  # server-kill | worker-kill | roll


def disruption_schedule(config: ChaosConfig) -> list[Disruption]:
    """Server kills, worker kills and rolling deploys at random points of the first 85% of the
    run, seeded, in the order they fire."""
    rng = random.Random(config.seed)
    kinds = (
        ["server-kill"] * config.server_kills
        + ["worker-kill"] * config.kills
        + ["roll"] * config.rolls
        + [f"permanent:{kind}" for kind in config.permanent]
    )
    return sorted(
        Disruption(int(rng.uniform(0.0, 0.85) * config.bookings), rng.uniform(0.2, 2.5), kind)
        for kind in kinds
    )


# ---- the bookings ---------------------------------------------------------------------------


def chaos_refs(count: int) -> list[str]:
    """Unique Boatsetter-like references ([A-Z0-9]{4,16}) of one run: C + run id + counter."""
    alphabet = string.ascii_uppercase + string.digits
    run = "".join(secrets.choice(alphabet) for _ in range(6))
    return [f"C{run}{n:05d}" for n in range(1, count + 1)]


def booking_data(ref: str) -> dict[str, Any]:
    return sample_charter(ref, guest_name="Chaos Guest", notes="Chaos charter")


@dataclass
class Tracked:
    """One booking of the run, as the driver saw it."""

    ref: str
    booking: Booking
    workflow_id: str
    started: bool = False
    start_error: str | None = None
    plan: Plan = field(default_factory=Plan)
    actions: list[dict[str, Any]] = field(default_factory=list)
    answered: list[str] = field(default_factory=list)
    blocked_on: set[str] = field(default_factory=set)
    final: BookingStatus | None = None
    last: BookingStatus | None = None
    outcome: str | None = None  # confirmed | completed | cancelled | failed
    reason: str | None = None  # for failed: the workflow's failure, named
    result: BookingResult | None = None
    repairs: list[str] = field(default_factory=list)  # why `charters ops repair` reset it

    def did(self, what: str) -> bool:
        return any(a["what"] == what for a in self.actions)

    @property
    def slug(self) -> str:
        return self.booking.page_slug

    @property
    def members(self) -> dict[str, str]:
        """crew id -> email, captain included."""
        return {m.id: m.email for _, m in self.booking.members}
