"""The ledger of a chaos run: per booking, every effect counted where it landed against what
the booking should have left, and each duplicate classified (see `classify`)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from temporalio.client import Client

from charters.settings import Settings
from charters.worker.wiring import AwsClients
from charters_dev.chaos_config import Tracked
from charters_dev.chaos_effects import (
    calendar_entries,
    history_figures,
    invalidations,
    ledger_takeovers,
    mail_by_ref,
    page_exists,
    scc_items,
)


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
    takeovers = await asyncio.to_thread(
        ledger_takeovers, aws, settings, {t.workflow_id for t in tracked}
    )
    pages = await asyncio.gather(
        *(asyncio.to_thread(page_exists, aws, settings, t.slug) for t in tracked)
    )
    histories = await _gather_limited(
        [history_figures(client, t.workflow_id) for t in tracked], limit=20
    )

    per_booking: list[dict[str, Any]] = []
    duplicates: list[dict[str, Any]] = []
    missing: list[str] = []
    for t, page, history in zip(tracked, pages, histories, strict=True):
        members = t.members
        captain = t.booking.captain.email
        mails = mail.get(t.ref, Counter())
        caller_refs = Counter(found_invalidations.get(t.slug, []))
        effects = {
            "calendar_entries": len(calendar.get(t.ref, [])),
            "scc_items": len(scc.get(t.ref, [])),
            "guest_page_objects": int(page),
            "invalidations": sum(caller_refs.values()),
            "invalidation_caller_references": len(caller_refs),
            "invites": {to: mails[("invite", to)] for to in sorted(members.values())},
            "captain_summaries": mails[("captain-summary", captain)],
            "other_mail": {
                f"{kind}:{to}": n
                for (kind, to), n in sorted(mails.items())
                if kind not in ("invite", "captain-summary") or to not in members.values()
            },
            "signals_received": history.get("signals", 0),
            "signals_sent": len(t.signalled),
        }
        wf = t.workflow_id
        # effect -> (count, the effect-ledger key that guards it, if any)
        singles: dict[str, tuple[int, str | None]] = {
            "calendar entry": (effects["calendar_entries"], None),
            "SCC item": (effects["scc_items"], None),
            "CloudFront invalidation (distinct CallerReference)": (len(caller_refs), None),
            "captain summary": (effects["captain_summaries"], f"email:{wf}:captain-summary:1"),
            **{
                f"invite to {to}": (effects["invites"][to], f"email:{wf}:invite:1:{crew_id}")
                for crew_id, to in members.items()
            },
        }
        for name, (n, key) in singles.items():
            if n > 1:
                duplicates.append(
                    classify(t.ref, name, n, key, takeovers, history.get("retried_activities"))
                )
            if n == 0 and t.outcome == "confirmed":
                missing.append(f"{t.ref}: no {name}")
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
        for name, n in effects["other_mail"].items():
            if n > 1:
                duplicates.append(classify(t.ref, f"mail {name}", n, None, {}, None))
        if effects["signals_received"] > effects["signals_sent"]:
            extra = effects["signals_received"] - effects["signals_sent"]
            duplicates.append(
                classify(t.ref, f"{extra} signal(s) more than sent", 2, None, {}, None)
            )
        if t.outcome == "confirmed" and not page:
            missing.append(f"{t.ref}: no guest page object")
        per_booking.append(
            {
                "ref": t.ref,
                "workflow_id": t.workflow_id,
                "slug": t.slug,
                "outcome": t.outcome,
                "reason": t.reason,
                "effects": effects,
                "history": history,
            }
        )
    return {
        "per_booking": per_booking,
        "duplicates": duplicates,
        "missing": missing,
        "ledger_takeovers": takeovers,
        "histories": histories,
    }


KILLED = "TimeoutError: activity StartToClose timeout"


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
    its start-to-close timeout (the worker was killed while it ran, so its answer was lost), and
    the effect is there no more often than the key was claimed. Anything else is `unexplained`."""
    entry: dict[str, Any] = {
        "ref": ref,
        "effect": effect,
        "count": count,
        "ledger_key": ledger_key,
        "class": "unexplained",
    }
    if ledger_key is None or ledger_key not in takeovers:
        return entry
    claims = takeovers[ledger_key]
    entry["ledger_claims"] = claims
    idem = ledger_key.split(":", 1)[1]
    lost_answers = [
        r
        for r in retried or []
        if r.get("idempotency_key")
        and idem.startswith(r["idempotency_key"])
        and (r.get("last_failure") or "").startswith(KILLED)
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
