"""The sequential baseline: the booking's activity functions, built by
`charters.worker.wiring.activities` against the same proxies, called one after another in this
process without Temporal (crew wait skipped). What a script doing the afternoon's clicking would
take; the bench reports its p50 next to the workflow's."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from charters.models import (
    Booking,
    CalendarEntryRequest,
    CalendarStatusRequest,
    CaptainSummaryRequest,
    CrewAnswer,
    CrewEmailRequest,
    GuestPageRequest,
    InvalidationRequest,
    RedactionRequest,
    SccEventRequest,
)
from charters.settings import Settings
from charters.worker import wiring
from charters_dev.bench_history import booking_data


def sequential_baseline(ws: Settings, new_ref: Callable[[], str], runs: int) -> list[float]:
    """The same activities, one after another, no Temporal: ms per booking."""
    http = wiring.http_client(8)
    try:
        fns = wiring.activities(ws, wiring.aws_clients(ws, max_pool=8), http)
        acts: dict[str, Any] = {getattr(f, "__name__", ""): f for f in fns}
        times = [_sequential_once(acts, ws, new_ref()) for _ in range(runs + 1)]
    finally:
        http.close()
    return times[1:]  # the first run warms the secret cache and the connections


def _sequential_once(acts: dict[str, Any], ws: Settings, ref: str) -> float:
    raw = booking_data(ref)
    wf = f"bench-sequential-{ref}"
    started = time.perf_counter()
    booking: Booking = acts["validate_booking"](raw)
    view = booking.crew_view(ws.guest_page_url(booking.page_slug))
    entry = acts["create_calendar_entry"](
        CalendarEntryRequest(idempotency_key=f"{wf}:calendar", booking=booking)
    )
    check = acts["check_scc_service_key"]()
    if not check.ok:
        raise RuntimeError(f"SCC service key check failed: {check.reason}")
    event = acts["create_scc_event"](SccEventRequest(idempotency_key=f"{wf}:scc", charter=view))
    acts["redact_scc_revenue"](
        RedactionRequest(event_id=event.event_id, amounts=booking.financials().amounts())
    )
    page = acts["publish_guest_page"](GuestPageRequest(charter=view, event_id=event.event_id))
    acts["invalidate_guest_page"](
        InvalidationRequest(
            idempotency_key=wf, slug=booking.page_slug, content_sha256=page.content_sha256
        )
    )
    for role, member in booking.members:
        acts["send_crew_email"](
            CrewEmailRequest(
                idempotency_key=f"{wf}:invite:1:{member.id}",
                workflow_id=wf,
                member=member,
                role=role,
                charter=view,
            )
        )
    answers = [
        CrewAnswer(crew_id=m.id, name=m.name, role=role, answer="accepted", by="bench")
        for role, m in booking.members
    ]
    acts["send_captain_summary"](
        CaptainSummaryRequest(
            idempotency_key=f"{wf}:captain-summary:1",
            booking=booking,
            charter=view,
            confirmations=answers,
        )
    )
    acts["update_calendar_entry"](
        CalendarStatusRequest(entry_id=entry.entry_id, status="confirmed")
    )
    return (time.perf_counter() - started) * 1000
