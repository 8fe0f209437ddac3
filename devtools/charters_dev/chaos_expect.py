"""What each booking of a chaos run should have left in the emulated systems, from its plan and
where it ended: how many of each effect (`Expected`: a range, as a cancel may land before or after
a step), and the end state its people's actions call for (`mismatches`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from charters_dev.chaos_config import Tracked
from charters_dev.chaos_operators import REPLACEMENT

CANCELLED_PAGE = "has been cancelled"


@dataclass
class Expected:
    low: int
    high: int
    ledger_key: str | None = None


def captain_email(t: Tracked) -> str:
    """Where the captain's summary goes: the replacement's address once the captain was
    replaced."""
    if t.plan.taken_off == t.booking.captain.id and t.did("assign"):
        return REPLACEMENT["email"]
    return t.booking.captain.email


def expected_effects(t: Tracked, invited: dict[str, int], asked: set[str]) -> dict[str, Expected]:
    """effect name -> how many; `invited` is recipient -> invitations found, `asked` the crew
    ids whose invitation the ledger holds a claim for. A cancelled booking tells every member
    it invited, and may tell one whose invitation was claimed but never answered (the send may
    have gone out: telling is the safe side); so does a replacement the member taken off, unless
    they had declined."""
    wf = t.workflow_id
    plan = t.plan
    cancelled = t.outcome == "cancelled"
    done = 0 if cancelled else 1
    maybe = (0 if cancelled else 1, 1)
    early_cancel = cancelled and plan.cancel_at in ("start", "provisioning", "publishing")
    effects: dict[str, Expected] = {
        "calendar entry": Expected(*(maybe if early_cancel else (1, 1))),
        "SCC item": Expected(*(maybe if early_cancel else (1, 1))),
        "guest page object": Expected(*(maybe if early_cancel else (1, 1))),
    }
    summary = 1 if not cancelled or plan.cancel_at == "confirmed" else 0
    effects["captain summary"] = Expected(summary, summary, f"email:{wf}:captain-summary")
    rescheduled = t.did("reschedule") and not cancelled
    # the first page, the new date's, and the new crew's after a replacement
    pages = 1 + rescheduled + (t.did("assign") and not cancelled)
    effects["CloudFront invalidation (distinct CallerReference)"] = Expected(
        0 if cancelled else pages, pages + (1 if cancelled else 0)
    )
    members = dict(t.members)
    if t.did("assign"):
        members[REPLACEMENT["id"]] = REPLACEMENT["email"]
    for crew_id, to in members.items():
        low = 0 if early_cancel or (cancelled and plan.cancel_at != "confirmed") else done
        if rescheduled:
            low = 0  # an invitation still waiting when the date moved is superseded, not sent
        taken_off = crew_id == plan.taken_off and t.did("assign")
        if taken_off:
            low = 0  # an invitation still blocked when its member was replaced is never sent
        effects[f"invite to {to}"] = Expected(low, 1, f"email:{wf}:invite:1:{crew_id}")
        told = 1 if cancelled and invited.get(to, 0) else 0
        may_tell = 1 if cancelled and (told or crew_id in asked) else 0
        effects[f"cancelled mail to {to}"] = Expected(
            told, may_tell, f"email:{wf}:cancelled:1:{crew_id}"
        )
        again = 1 if rescheduled and crew_id != plan.decliner else 0
        effects[f"rescheduled mail to {to}"] = Expected(
            again, again, f"email:{wf}:rescheduled:2:{crew_id}"
        )
        released = taken_off and plan.kind == "replace"
        told = 1 if released and invited.get(to, 0) else 0
        may_tell = 1 if released and (told or crew_id in asked) else 0
        effects[f"released mail to {to}"] = Expected(
            told, may_tell, f"email:{wf}:released:{crew_id}"
        )
    return effects


def mismatches(
    t: Tracked,
    calendar: list[dict[str, Any]],
    scc: list[dict[str, Any]],
    page: str | None,
) -> list[str]:
    """How the booking's end state differs from what its plan calls for (empty: it agrees)."""
    plan = t.plan
    wrong: list[str] = []
    want = "cancelled" if plan.ends_cancelled else "confirmed"
    if t.outcome != want:
        wrong.append(f"ended {t.outcome} ({t.reason or 'no reason'}), plan {plan.kind}: {want}")
        return wrong
    cal_status = "cancelled" if plan.ends_cancelled else "confirmed"
    wrong += [
        f"calendar entry {e.get('entry_id')} is {e.get('status')}, not {cal_status}"
        for e in calendar
        if e.get("status") != cal_status
    ]
    if plan.ends_cancelled:
        wrong += [
            f"SCC event {i.get('event_id')} is {i.get('status')}"
            for i in scc
            if i.get("status") != "cancelled"
        ]
        if page is not None and CANCELLED_PAGE not in page:
            wrong.append("the guest page is not the cancellation notice")
        if plan.late_answer and any(a["recorded"] for a in t.actions if a["what"] == "late-answer"):
            wrong.append("an answer after the cancel was recorded")
    else:
        wrong += [
            f"SCC event {i.get('event_id')} is cancelled"
            for i in scc
            if i.get("status") == "cancelled"
        ]
        if page is not None and CANCELLED_PAGE in page:
            wrong.append("the guest page says cancelled")
    if plan.kind == "reschedule" and plan.new_starts_at is not None:
        date = plan.new_starts_at.date().isoformat()
        wrong += [
            f"calendar entry on {e.get('date')}, not {date}"
            for e in calendar
            if e.get("date") != date
        ]
        wrong += [
            f"SCC event on {i.get('date')}, not {date}"
            for i in scc
            if not str(i.get("date", "")).startswith(date)
        ]
        if t.final is not None and t.final.round != 2:
            wrong.append(f"round {t.final.round} after one reschedule")
    if plan.taken_off and t.final is not None:
        answers = {c.crew_id: c.answer for c in t.final.crew}
        if answers.get(REPLACEMENT["id"]) != "accepted":
            wrong.append(f"replacement {answers.get(REPLACEMENT['id'])}, not accepted")
        if t.result and plan.taken_off in {c.crew_id for c in t.result.confirmations}:
            wrong.append(f"{plan.taken_off} still on the crew after the replacement")
    if plan.kind == "second-start":
        codes = [a["code"] for a in t.actions if a["what"] == "second-start"]
        if codes != ["refused"]:
            wrong.append(f"second start: {codes}, not refused")
    return wrong
