"""The ledger of a chaos run: per booking, every effect counted where it landed against what
the booking should have left, and each duplicate classified (see `classify`)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from temporalio.client import Client

from charters.settings import Settings
from charters.worker.replay import HistoryReplay
from charters.worker.wiring import AwsClients
from charters_dev.chaos_config import Tracked
from charters_dev.chaos_effects import (
    asked_in_ledger,
    calendar_entries,
    history_figures,
    invalidations,
    ledger_takeovers,
    mail_by_ref,
    page_body,
    scc_items,
)
from charters_dev.chaos_expect import Expected, captain_email, expected_effects, mismatches


async def read_ledger(
    client: Client, settings: Settings, aws: AwsClients, tracked: list[Tracked]
) -> dict[str, Any]:
    """Per booking: every effect counted where it landed, and what is duplicated or missing."""
    refs = {t.ref for t in tracked}
    slugs = {t.slug for t in tracked}
    calendar = await asyncio.to_thread(calendar_entries, settings)
    scc = await asyncio.to_thread(scc_items, aws, settings)
    found_invalidations = await asyncio.to_thread(invalidations, aws, settings, slugs)
    mail = await asyncio.to_thread(mail_by_ref, settings, refs)
    workflow_ids = {t.workflow_id for t in tracked}
    takeovers = await asyncio.to_thread(ledger_takeovers, aws, settings, workflow_ids)
    asked = await asyncio.to_thread(asked_in_ledger, aws, settings, workflow_ids)
    pages: list[str | None] = await asyncio.gather(
        *(asyncio.to_thread(page_body, aws, settings, t.slug) for t in tracked)
    )
    replay = HistoryReplay(client.data_converter)
    histories = await _gather_limited(
        [history_figures(client, t.workflow_id, replay) for t in tracked], limit=20
    )

    per_booking: list[dict[str, Any]] = []
    duplicates: list[dict[str, Any]] = []
    missing: list[str] = []
    mismatch: dict[str, list[str]] = {}
    for t, page, history in zip(tracked, pages, histories, strict=True):
        mails = mail.get(t.ref, Counter())
        caller_refs = Counter(found_invalidations.get(t.slug, []))
        entries, items = calendar.get(t.ref, []), scc.get(t.ref, [])
        invited = {to: n for (kind, to), n in mails.items() if kind == "invite"}
        found = {
            "calendar entry": len(entries),
            "SCC item": len(items),
            "guest page object": int(page is not None),
            "captain summary": mails[("captain-summary", captain_email(t))],
            "CloudFront invalidation (distinct CallerReference)": len(caller_refs),
            **{f"invite to {to}": n for to, n in invited.items()},
            **{
                f"{kind} mail to {to}": n
                for (kind, to), n in mails.items()
                if kind in ("cancelled", "rescheduled", "released")
            },
        }
        expected = expected_effects(t, invited, asked.get(t.workflow_id, set()))
        for name in sorted(set(found) | set(expected)):
            n, want = found.get(name, 0), expected.get(name, Expected(0, 0))
            if t.outcome is None or t.outcome == "failed":
                continue  # counted as lost or failed, not effect by effect
            if n > want.high:
                duplicates.append(
                    classify(
                        t.ref,
                        name,
                        n,
                        want.ledger_key,
                        takeovers,
                        history.get("retried_activities"),
                    )
                )
            elif n < want.low:
                missing.append(f"{t.ref}: {name}: {n} found, {want.low} expected")
        for caller_ref, n in caller_refs.items():
            if n > 1:  # AWS answers a repeated CallerReference with the first invalidation
                duplicates.append(
                    {
                        **classify(
                            t.ref,
                            "CloudFront invalidation",
                            n,
                            f"cloudfront:{caller_ref}",
                            takeovers,
                            history.get("retried_activities"),
                        ),
                        "class": "cloudfront-same-caller-reference",
                    }
                )
        wrong = mismatches(t, entries, items, page) if t.outcome else []
        if wrong:
            mismatch[t.ref] = wrong
        per_booking.append(
            {
                "ref": t.ref,
                "workflow_id": t.workflow_id,
                "plan": t.plan.kind,
                "cancel_at": t.plan.cancel_at,
                "outcome": t.outcome,
                "reason": t.reason,
                "actions": t.actions,
                "blocked_on": sorted(t.blocked_on),
                "last_status": t.last.model_dump(
                    mode="json", include={"stage", "steps", "blocked_on", "blocks", "error"}
                )
                if t.last and t.outcome is None
                else None,
                "effects": found,
                "history": history,
            }
        )
    return {
        "per_booking": per_booking,
        "duplicates": duplicates,
        "missing": missing,
        "mismatch": mismatch,
        "ledger_takeovers": takeovers,
        "histories": histories,
    }


KILLED = "TimeoutError: activity StartToClose timeout"
# The attempt after a killed one meets its claim and waits out the lease (the lease outlasts any
# attempt): the last attempt's recorded failure is then this, not the timeout.
CLAIM_LEFT = "EffectInFlight"


def classify(
    ref: str,
    effect: str,
    count: int,
    ledger_key: str | None,
    takeovers: dict[str, int],
    retried: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    """A duplicate is in the documented window (`ses-window`) only with all the evidence: its
    ledger key was claimed again (taken over), an attempt of the activity with that key ended by
    its start-to-close timeout or met a claim an earlier attempt left unrecorded (the worker was
    killed while it ran, so its answer was lost; the history keeps only the last attempt's
    failure), and the effect is there no more often than the key was claimed. Anything else is
    `unexplained`."""
    entry: dict[str, Any] = {
        "ref": ref,
        "effect": effect,
        "count": count,
        "ledger_key": ledger_key,
        "class": "unexplained",
    }
    if ledger_key is None:
        return entry
    # The workflow may key an effect more finely than the count does (the captain's summary per
    # round and crew version): the key's own claims, or those of the keys under it.
    under = [k for k in takeovers if k == ledger_key or k.startswith(f"{ledger_key}:")]
    if not under:
        return entry
    ledger_key = max(under, key=lambda k: takeovers[k])
    entry["ledger_key"] = ledger_key
    claims = takeovers[ledger_key]
    entry["ledger_claims"] = claims
    idem = ledger_key.split(":", 1)[1]
    lost_answers = [
        r
        for r in retried or []
        if r.get("idempotency_key")
        and idem.startswith(r["idempotency_key"])
        and (r.get("last_failure") or "").startswith((KILLED, CLAIM_LEFT))
    ]
    if lost_answers and count <= claims and ledger_key.startswith("email:"):
        entry["class"] = "ses-window"
    entry["evidence"] = [r.get("last_failure") for r in lost_answers]
    return entry


async def _gather_limited(coros: list[Any], limit: int) -> list[Any]:
    gate = asyncio.Semaphore(limit)

    async def one(coro: Any) -> Any:
        async with gate:
            return await coro

    return list(await asyncio.gather(*(one(c) for c in coros)))
