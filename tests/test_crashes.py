"""kill -9 of the worker while signals arrive, then a restart: the booking completes with each
effect exactly once, counted in the emulated systems themselves. A kill with each step in flight
is `test_interleaving`'s kill column."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from charters_dev.chaos import ledger_takeovers
from charters_dev.stack import DevStack

from charters import contract
from charters.actions import settled
from charters.settings import Settings
from charters.worker.wiring import AwsClients
from tests.conftest import Booker
from tests.support import (
    booking_data,
    calendar_entries,
    follow_link,
    invalidations_for,
    mail_for,
    scc_items,
)

CREW = ["alex@sailjada.com", "captain@sailjada.com", "jordan@sailjada.com"]


def assert_effects_once(aws: AwsClients, settings: Settings, ref: str, slug: str) -> None:
    """Every effect once. The one exception allowed is SES's documented window (it has no
    idempotency token): a worker killed after SES took a message and before the ledger recorded
    it sends that message again, and the ledger then shows the claim taken over."""
    assert len(calendar_entries(settings, ref)) == 1, "calendar entries"
    assert len(scc_items(aws, settings, ref)) == 1, "SCC events"
    assert len(invalidations_for(aws, settings, slug)) == 1
    mails = mail_for(settings, ref)
    invites = Counter(r for m in mails if m.magic_links() for r in m.to)
    summaries = Counter(r for m in mails if m.subject.startswith("Confirmed:") for r in m.to)
    assert sorted(invites) == CREW, invites
    assert list(summaries) == ["captain@sailjada.com"], summaries
    repeats = {
        "invite": [to for to, n in invites.items() if n > 1],
        "captain-summary": [to for to, n in summaries.items() if n > 1],
    }
    if not any(repeats.values()):
        return
    assert all(n <= 2 for n in [*invites.values(), *summaries.values()]), (invites, summaries)
    taken_over = ledger_takeovers(aws, settings, {contract.workflow_id_for(ref)})
    for kind, recipients in repeats.items():
        claims = [k for k in taken_over if k.split(":")[2] == kind]
        assert len(recipients) <= len(claims), (kind, recipients, taken_over)


async def test_signals_while_the_worker_is_down_are_not_lost(
    stack: DevStack,
    booker: Booker,
    aws: AwsClients,
    settings: Settings,
) -> None:
    from charters.starter.book import validate

    data = booking_data()
    ref = data["booking_ref"]
    handle = await booker.start(data)
    await booker.wait_stage(handle.id, "awaiting-crew")
    invites = [m for m in mail_for(settings, ref) if m.magic_links()]
    first, rest = invites[0], invites[1:]
    await asyncio.to_thread(follow_link, first.magic_links()["accept"], "accept")
    await asyncio.to_thread(stack.kill_worker)
    for mail in rest:
        await handle.signal(
            "crew_confirmation",
            {"crew_id": _crew_id(data, mail.to[0]), "decision": "accept", "by": "crew"},
        )
    await asyncio.to_thread(stack.start_worker)
    result = await settled(handle, 90)
    assert result.outcome == "confirmed"
    assert all(a.answer == "accepted" for a in result.confirmations)
    assert_effects_once(aws, settings, ref, validate(data).page_slug)


def _crew_id(data: dict[str, Any], email: str) -> str:
    members = [data["captain"], *data["crew"]]
    return next(str(m["id"]) for m in members if m["email"] == email)
