"""The bench's model of one booking: the external calls of each activity, the workflow's stages,
and from them the critical path (the bound no implementation beats when every call waits L ms)."""

from __future__ import annotations

from dataclasses import dataclass

PROXY_TARGETS = ("aws", "calendar", "scc")

# ---- the critical path ----------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    target: str  # the fault proxy target the call goes through: aws, calendar or scc
    what: str


def _ledger(effect: str) -> tuple[Call, ...]:
    """EffectLedger.once on a new key: conditional claim, the effect, record the result."""
    return (
        Call("aws", "dynamodb PutItem (ledger claim)"),
        Call("aws", effect),
        Call("aws", "dynamodb UpdateItem (ledger record)"),
    )


# External calls of each activity, read from charters/activities. Secret reads are left out:
# SecretReader caches each secret for 30 s, so only the first booking after a cache expiry pays
# one more aws call in check_scc_service_key, create_calendar_entry and send_crew_email. Redaction
# writes only fields that carry revenue; the SCC notes never do, so a clean item is one read.
ACTIVITY_CALLS: dict[str, tuple[Call, ...]] = {
    "validate_booking": (),
    "create_calendar_entry": (Call("calendar", "POST /calendar (Idempotency-Key)"),),
    "check_scc_service_key": (Call("aws", "lambda GetFunctionConfiguration"),),
    "create_scc_event": (Call("scc", "POST /prod/events (Idempotency-Key)"),),
    "redact_scc_revenue": (Call("aws", "dynamodb GetItem"),),
    "publish_guest_page": (Call("aws", "s3 PutObject"),),
    "invalidate_guest_page": (Call("aws", "cloudfront CreateInvalidation"),),
    "send_crew_email": _ledger("sesv2 SendEmail"),
    "send_captain_summary": _ledger("sesv2 SendEmail"),
    "update_calendar_entry": (Call("calendar", "PATCH /calendar/{entry_id}"),),
}

# CharterBookingWorkflow.run, stage by stage (the crew wait left out). Each stage is a tuple of
# branches that run in parallel; each branch is a sequence of activities, one after another.
# The bench booking has a captain and two crew: three invitation emails side by side.
MEMBERS = 3
WORKFLOW_STAGES: tuple[tuple[str, tuple[tuple[str, ...], ...]], ...] = (
    ("validate", (("validate_booking",),)),
    ("provision", (("create_calendar_entry",), ("check_scc_service_key", "create_scc_event"))),
    (
        "redact and publish",
        (("redact_scc_revenue",), ("publish_guest_page", "invalidate_guest_page")),
    ),
    ("notify crew", (("send_crew_email",),) * MEMBERS),
    # ... awaiting-crew: the human wait, not part of the pipeline ...
    ("finalize", (("send_captain_summary",), ("update_calendar_entry",))),
)


def _branch_calls(branch: tuple[str, ...]) -> list[tuple[str, Call]]:
    return [(activity, call) for activity in branch for call in ACTIVITY_CALLS[activity]]


def critical_path(through: str | None = None) -> list[tuple[str, Call]]:
    """The longest chain of dependent calls: per stage, its longest branch; up to and including
    the stage named `through` when given.

    validate (0, a local activity) -> provision: max(calendar create = 1, SCC: lambda check,
    create = 2) -> max(redact: get = 1; publish: put, then invalidate = 2) -> notify: per member
    in parallel, ledger claim, send, record (3) -> [crew wait] -> max(captain summary 3,
    calendar patch 1): 10 calls."""
    chain: list[tuple[str, Call]] = []
    for name, branches in WORKFLOW_STAGES:
        longest: list[tuple[str, Call]] = []
        for branch in branches:
            calls = _branch_calls(branch)
            if len(calls) > len(longest):
                longest = calls
        chain += longest
        if name == through:
            break
    return chain


def all_calls() -> list[tuple[str, Call]]:
    """Every call of one booking: what a strictly sequential run waits for."""
    return [pair for _, branches in WORKFLOW_STAGES for b in branches for pair in _branch_calls(b)]


CRITICAL_PATH = critical_path()


def expected_calls_per_target() -> dict[str, int]:
    counts = dict.fromkeys(PROXY_TARGETS, 0)
    for _, call in all_calls():
        counts[call.target] += 1
    return counts


# What a guest waits for before the crew is asked: through the last invitation sent (7 calls).
CREW_NOTIFIED_PATH = critical_path(through="notify crew")
