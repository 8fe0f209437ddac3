"""The workflow's public contract: names the starter, worker, CLI and web endpoint share."""

from __future__ import annotations

from enum import StrEnum
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
QUERY_REFUSED_RUN_AHEAD = "not applying history no workflow task has started"
"""How a worker's refusal of a query starts when answering it would run the booking ahead of
its history (`charters.worker.run_ahead`); the caller asks again (`charters.actions.ask`)."""

# People's actions are Workflow Updates under the same names as the signals above (signals stay
# for scripts). An update returns the workflow's own `Verdict`; a validator refuses what the
# workflow would ignore, so nothing refused enters history.
UPDATE_CREW_CONFIRMATION = SIGNAL_CREW_CONFIRMATION
UPDATE_ASSIGN_CREW = SIGNAL_ASSIGN_CREW
UPDATE_CANCEL_BOOKING = SIGNAL_CANCEL_BOOKING
UPDATE_RESCHEDULE = SIGNAL_RESCHEDULE
UPDATE_APPROVE_SCC_KEY_REPAIR = SIGNAL_APPROVE_SCC_KEY_REPAIR
UPDATE_RESOLVE_BLOCK = "resolve_block"
UPDATE_MOVE_BRAND = "move_brand"
"""Moves a booking to another brand (`charters move-brand`, argument `MoveBrand`)."""
SIGNAL_MOVE_BRAND = UPDATE_MOVE_BRAND
"""The same move as a signal, for scripts (validated like the update; a refused one is
dropped)."""

# Why an update was refused: the `type` of the validator's ApplicationError.
REFUSED_ALREADY_ANSWERED = "already-answered"
REFUSED_REPLACED = "replaced"
REFUSED_SUPERSEDED = "superseded"
REFUSED_UNKNOWN_MEMBER = "unknown-member"
REFUSED_CANCELLED = "cancelled"
REFUSED_DEPARTED = "departed"
REFUSED_NOT_BLOCKED = "not-blocked"
REFUSED_INVALID = "invalid"
REFUSED_SAME_BRAND = "same-brand"
# Client side only: the workflow could not be asked.
REFUSED_UNKNOWN_BOOKING = "unknown-booking"
REFUSED_CLOSED = "closed"

SA_BOOKING_REF = SearchAttributeKey.for_keyword("BookingRef")
SA_CHARTER_DATE = SearchAttributeKey.for_datetime("CharterDate")
SA_BOOKING_STAGE = SearchAttributeKey.for_keyword("BookingStage")
SA_BLOCKED_ON = SearchAttributeKey.for_keyword("BlockedOn")
SA_CREW_PENDING = SearchAttributeKey.for_int("CrewPending")
SA_BRAND = SearchAttributeKey.for_keyword("Brand")
"""The booking's brand name (configuration, never PII): set at start, upserted by the workflow
after validation (the default brand filled in) and after `move_brand`."""

SEARCH_ATTRIBUTES: list[SearchAttributeKey[Any]] = [
    SA_BOOKING_REF,
    SA_CHARTER_DATE,
    SA_BOOKING_STAGE,
    SA_BLOCKED_ON,
    SA_CREW_PENDING,
    SA_BRAND,
]


class Stage(StrEnum):
    """The stages the workflow reports (BookingStage), in the order a booking passes them."""

    RECEIVED = "received"
    VALIDATING = "validating"
    PROVISIONING = "provisioning"
    PUBLISHING = "publishing"
    NOTIFYING = "notifying"
    AWAITING_CREW = "awaiting-crew"
    FINALIZING = "finalizing"
    CONFIRMED = "confirmed"
    UNDER_WAY = "under-way"
    POST_TRIP = "post-trip"
    COMPLETED = "completed"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"
    FAILED = "failed"


STAGES: list[str] = [stage.value for stage in Stage]
# A booking in one of these has ended: nothing more happens to it.
FINAL_STAGES = frozenset({Stage.COMPLETED, Stage.CANCELLED, Stage.FAILED})
# What `charters book --wait` and `result` wait for: the booking is settled for now.
SETTLED_STAGES = frozenset({Stage.CONFIRMED, Stage.CANCELLED, Stage.COMPLETED})
# No crew answer can change anything any more.
CLOSED_TO_CREW_STAGES = frozenset({Stage.UNDER_WAY, Stage.POST_TRIP, Stage.COMPLETED, Stage.FAILED})


class Activity(StrEnum):
    """Activity names: the workflow calls activities by these names (it imports no activity
    code), the worker registers its activity methods under them."""

    VALIDATE_BOOKING = "validate_booking"
    CREATE_CALENDAR_ENTRY = "create_calendar_entry"
    UPDATE_CALENDAR_ENTRY = "update_calendar_entry"
    CANCEL_CALENDAR_ENTRY = "cancel_calendar_entry"
    CHECK_SCC_SERVICE_KEY = "check_scc_service_key"
    AWAIT_SCC_SERVICE_KEY = "await_scc_service_key"
    REPAIR_SCC_SERVICE_KEY_HASH = "repair_scc_service_key_hash"
    CREATE_SCC_EVENT = "create_scc_event"
    UPDATE_SCC_EVENT = "update_scc_event"
    CANCEL_SCC_EVENT = "cancel_scc_event"
    REDACT_SCC_REVENUE = "redact_scc_revenue"
    PUBLISH_GUEST_PAGE = "publish_guest_page"
    PUBLISH_PHOTO_ALBUM = "publish_photo_album"
    INVALIDATE_GUEST_PAGE = "invalidate_guest_page"
    SEND_CREW_EMAIL = "send_crew_email"
    SEND_GUEST_EMAIL = "send_guest_email"
    SEND_CAPTAIN_SUMMARY = "send_captain_summary"
    ALERT_OPERATIONS = "alert_operations"
    SEND_CREW_SMS = "send_crew_sms"
    MOVE_GUEST_PAGE = "move_guest_page"


ACTIVITY_SUMMARIES = {  # each scheduled activity's summary in the Web UI
    Activity.CREATE_CALENDAR_ENTRY: "Create the JADA calendar entry",
    Activity.UPDATE_CALENDAR_ENTRY: "Update the calendar entry",
    Activity.CANCEL_CALENDAR_ENTRY: "Cancel the calendar entry (found by its key)",
    Activity.CHECK_SCC_SERVICE_KEY: "Check SERVICE_KEY_HASH on the SCC Lambda",
    Activity.AWAIT_SCC_SERVICE_KEY: "Wait for SERVICE_KEY_HASH to be fixed (retries until it is)",
    Activity.REPAIR_SCC_SERVICE_KEY_HASH: "Repair SERVICE_KEY_HASH (operator approved)",
    Activity.CREATE_SCC_EVENT: "Create the crew event in ShipCaptainCrew",
    Activity.UPDATE_SCC_EVENT: "Update the SCC event",
    Activity.CANCEL_SCC_EVENT: "Cancel the SCC event (found by its key)",
    Activity.REDACT_SCC_REVENUE: "Remove revenue from the SCC item",
    Activity.PUBLISH_GUEST_PAGE: "Publish the guest page to S3",
    Activity.PUBLISH_PHOTO_ALBUM: "Publish the photo album page to S3",
    Activity.INVALIDATE_GUEST_PAGE: "Invalidate the guest page in CloudFront",
    Activity.SEND_CREW_EMAIL: "Email a crew member",
    Activity.SEND_GUEST_EMAIL: "Email the guest",
    Activity.ALERT_OPERATIONS: "Alert operations",
    Activity.SEND_CAPTAIN_SUMMARY: "Send the captain's summary",
    Activity.SEND_CREW_SMS: "Text a crew member (SMS)",
    Activity.MOVE_GUEST_PAGE: "Move the guest page to another brand's site",
}


BLOCKED_SCC_KEY_HASH = "scc-service-key-hash"
BLOCKED_CREW_CONFIRMATIONS = "crew-confirmations"
BLOCKED_CREW_DECLINED = "crew-declined"
BLOCKED_CREW_DEADLINE = "crew-deadline"
BLOCKED_CREW_UNFILLED = "crew-unfilled"
BLOCKED_GUEST_EMAIL = "guest-email"  # the guest's address bounced: reach them another way
# Any other step that only a person can unblock shows `BlockedOn=<step>` (e.g. `guest-page`,
# `invalidate`, `crew-email:jordan`): member ids, never addresses (search attributes are not
# encrypted).


def workflow_id_for(booking_ref: str) -> str:
    """One workflow per booking: the id is derived from the Boatsetter reference."""
    return f"charter-{booking_ref}"
