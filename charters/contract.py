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
QUERY_STATUS = "status"

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

BLOCKED_SCC_KEY_HASH = "scc-service-key-hash"
BLOCKED_CREW_CONFIRMATIONS = "crew-confirmations"
BLOCKED_CREW_DECLINED = "crew-declined"
BLOCKED_CREW_DEADLINE = "crew-deadline"


def workflow_id_for(booking_ref: str) -> str:
    """One workflow per booking: the id is derived from the Boatsetter reference."""
    return f"charter-{booking_ref}"
