"""The workflow's public contract: names the starter, worker, CLI and web endpoint share."""

from __future__ import annotations

from typing import Any

from temporalio.common import SearchAttributeKey

WORKFLOW_NAME = "CharterBookingWorkflow"

SIGNAL_CREW_CONFIRMATION = "crew_confirmation"
SIGNAL_ASSIGN_CREW = "assign_crew"
SIGNAL_CANCEL_BOOKING = "cancel_booking"
SIGNAL_RESCHEDULE = "reschedule"
SIGNAL_APPROVE_SCC_KEY_REPAIR = "approve_scc_key_repair"
SIGNAL_EMAIL_BOUNCED = "email_bounced"
QUERY_STATUS = "status"
QUERY_RESULT = "result"

# People's actions are Workflow Updates under the same names as the signals above (signals stay
# for scripts). An update returns the workflow's own `Verdict`; a validator refuses what the
# workflow would ignore, so nothing refused enters history.
UPDATE_CREW_CONFIRMATION = SIGNAL_CREW_CONFIRMATION
UPDATE_ASSIGN_CREW = SIGNAL_ASSIGN_CREW
UPDATE_CANCEL_BOOKING = SIGNAL_CANCEL_BOOKING
UPDATE_RESCHEDULE = SIGNAL_RESCHEDULE
UPDATE_APPROVE_SCC_KEY_REPAIR = SIGNAL_APPROVE_SCC_KEY_REPAIR
UPDATE_RESOLVE_BLOCK = "resolve_block"

# Why an update was refused: the `type` of the validator's ApplicationError.
REFUSED_ALREADY_ANSWERED = "already-answered"
REFUSED_REPLACED = "replaced"
REFUSED_SUPERSEDED = "superseded"
REFUSED_UNKNOWN_MEMBER = "unknown-member"
REFUSED_CANCELLED = "cancelled"
REFUSED_DEPARTED = "departed"
REFUSED_NOT_BLOCKED = "not-blocked"
REFUSED_INVALID = "invalid"
# Client side only: the workflow could not be asked.
REFUSED_UNKNOWN_BOOKING = "unknown-booking"
REFUSED_CLOSED = "closed"

SA_BOOKING_REF = SearchAttributeKey.for_keyword("BookingRef")
SA_CHARTER_DATE = SearchAttributeKey.for_datetime("CharterDate")
SA_BOOKING_STAGE = SearchAttributeKey.for_keyword("BookingStage")
SA_BLOCKED_ON = SearchAttributeKey.for_keyword("BlockedOn")
SA_CREW_PENDING = SearchAttributeKey.for_int("CrewPending")

SEARCH_ATTRIBUTES: list[SearchAttributeKey[Any]] = [
    SA_BOOKING_REF,
    SA_CHARTER_DATE,
    SA_BOOKING_STAGE,
    SA_BLOCKED_ON,
    SA_CREW_PENDING,
]

# The stages the workflow reports (BookingStage), in the order a booking passes them.
STAGES: list[str] = [
    "received",
    "validating",
    "provisioning",
    "publishing",
    "notifying",
    "awaiting-crew",
    "finalizing",
    "confirmed",
    "under-way",
    "post-trip",
    "completed",
    "cancelling",
    "cancelled",
    "failed",
]

BLOCKED_SCC_KEY_HASH = "scc-service-key-hash"
BLOCKED_CREW_CONFIRMATIONS = "crew-confirmations"
BLOCKED_CREW_DECLINED = "crew-declined"
BLOCKED_CREW_DEADLINE = "crew-deadline"
BLOCKED_CREW_UNFILLED = "crew-unfilled"
# Any other step that only a person can unblock shows `BlockedOn=<step>` (e.g. `guest-page`,
# `invalidate`, `crew-email:jordan`): member ids, never addresses (search attributes are not
# encrypted).


def workflow_id_for(booking_ref: str) -> str:
    """One workflow per booking: the id is derived from the Boatsetter reference."""
    return f"charter-{booking_ref}"
