"""The workflow's input, options, status, result and the state it carries through
continue-as-new."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from charters.models.booking import (
    Booking,
    CrewMember,
    CrewView,
    Role,
)
from charters.models.messages import (
    GuestPageRef,
)
from charters.models.people import (
    CancelBooking,
    CrewAnswer,
    CrewConfirmation,
    MoveBrand,
    Reschedule,
)


class BookingOptions(BaseModel):
    """Timing knobs the workflow needs; the starter fills them from settings so the workflow
    never reads configuration itself."""

    scc_retry_initial_seconds: float = 2.0
    scc_retry_max_interval_seconds: float = 60.0
    activity_max_interval_seconds: float = 30.0
    activity_timeout_seconds: float = 30.0
    reminder_after_hours: float = 24.0
    max_reminders: int = 2
    transient_bounce_retry_hours: float = Field(
        4.0, description="a crew email that bounced for now (a full mailbox) goes again after"
    )
    transient_bounce_retries: int = Field(
        2, description="sends again after transient bounces, then the seat blocks"
    )
    confirm_deadline_hours_before: float = 48.0
    guest_page_url: str
    step_retry_budget_seconds: float = Field(
        600.0, description="transient retries of one step before it blocks for a person"
    )
    guest_reminder_hours_before: list[float] = Field(default_factory=lambda: [72.0, 24.0])
    crew_day_of_hours_before: float = 4.0
    thank_you_hours_after_end: float = 2.0
    history_event_limit: int = Field(
        2000, description="continue-as-new at a quiet point once history is this long"
    )
    local_activities: bool = Field(
        False, description="short steps run as local activities first (a regular one on failure)"
    )


class CharterBookingInput(BaseModel):
    """Raw booking (validated again inside the workflow) plus options. Never a secret. `state` is
    set only by continue-as-new: the booking's life so far, carried to the next run."""

    booking: dict[str, Any]
    options: BookingOptions
    state: BookingState | None = None


StepState = Literal[
    "pending",
    "running",
    "done",
    "failed",
    "blocked",
    "skipped",
    "compensated",
    "cancelled",
]


class Block(BaseModel):
    """A step that waits for a person: what it is, why, and the exact command that resolves it."""

    on: str
    reason: str
    fix: str
    since: datetime | None = None


class BookingStatus(BaseModel):
    workflow_id: str
    booking_ref: str
    stage: str
    round: int = 1
    steps: dict[str, StepState]
    crew: list[CrewAnswer]
    blocked_on: str | None = None
    blocked_reason: str | None = None
    blocked_fix: str | None = Field(None, description="the exact command that resolves the block")
    outcome: Literal["completed", "cancelled", "failed"] | None = None
    blocks: list[Block] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list, description="what happened that people see")
    guest_page_url: str | None = None
    charter: CrewView | None = None
    error: str | None = None


class BookingResult(BaseModel):
    workflow_id: str
    booking_ref: str
    outcome: Literal["confirmed", "completed", "cancelled"]
    calendar_entry_id: str | None
    scc_event_id: str | None
    guest_page_url: str
    guest_page_key: str
    invalidation_ids: list[str]
    crew_email_ids: dict[str, str]
    captain_summary_email_id: str | None
    confirmations: list[CrewAnswer]
    guest_email_ids: dict[str, str] = Field(default_factory=dict)
    album_url: str | None = None
    compensated: list[str] = Field(default_factory=list)


class Effects(BaseModel):
    """What the booking made outside. `attempted` names every step that may have made its
    effect (its activity was scheduled), so compensation looks for it by key even when the
    result never reached the workflow."""

    attempted: list[str] = Field(default_factory=list)
    calendar_id: str | None = None
    event_id: str | None = None
    page: GuestPageRef | None = None
    invalidations: list[str] = Field(default_factory=list)
    summary_id: str | None = None
    album_url: str | None = None
    compensated: list[str] = Field(default_factory=list)
    moved_from: dict[str, str] = Field(
        default_factory=dict, description="brand moved to -> the page URL it moved from"
    )


class Released(BaseModel):
    """A member taken off the crew without having declined, owed a word that they are no
    longer needed, if one of the invitations in `asked` went out (the email ledger knows)."""

    member: CrewMember
    role: Role
    asked: list[str]
    done: bool = False


class Resend(BaseModel):
    """A crew email that bounced for now, sent again under a key of its own at `at`."""

    member_id: str
    key: str
    round: int
    at: datetime


class CrewState(BaseModel):
    """Who is aboard and what they answered; the emails each was sent."""

    answers: dict[str, CrewAnswer] = Field(default_factory=dict)
    invited_at: dict[str, datetime] = Field(default_factory=dict)
    seat_versions: dict[str, int] = Field(
        default_factory=dict, description="bumped when a member's details change (re-invite)"
    )
    version: int = 1
    emails: dict[str, str] = Field(default_factory=dict, description="email key -> message id")
    asked: dict[str, list[str]] = Field(
        default_factory=dict,
        description="member -> keys of the invitations sent or being sent (who to tell of a "
        "cancel)",
    )
    held: list[CrewConfirmation] = Field(
        default_factory=list, description="signals that came before the booking was validated"
    )
    finalized: str | None = Field(None, description="round:version the summary went for")
    transient: dict[str, list[str]] = Field(
        default_factory=dict,
        description="member -> message ids of their transient bounces (counted, deduplicated)",
    )
    resends: list[Resend] = Field(
        default_factory=list, description="emails a transient bounce sends again later"
    )
    released: list[Released] = Field(
        default_factory=list, description="members replaced before they declined"
    )


class TextState(BaseModel):
    """The crew's texts (SMS), beside their emails: what each text's key came to."""

    sent: dict[str, str] = Field(
        default_factory=dict,
        description="text key -> SNS message id; '' when nothing went (opted out, no phone, "
        "skipped by an operator)",
    )
    asked: dict[str, list[str]] = Field(
        default_factory=dict,
        description="member -> keys of the invitation texts sent or being sent (who to text of "
        "a cancel)",
    )
    shown: dict[str, Literal["sent", "opted-out"]] = Field(
        default_factory=dict,
        description="member -> what their last text came to (`status` shows it); a member "
        "whose number is on SNS's opt-out list is `opted-out`",
    )


class ClockState(BaseModel):
    """The booking's clocks: when the current round began and what fell due and was sent."""

    asked_at: datetime | None = None
    done: list[str] = Field(default_factory=list, description="one-off sends already made")
    escalated_round: int = 0
    guest_emails: dict[str, str] = Field(default_factory=dict)


class Requests(BaseModel):
    """What people asked for that the process has yet to act on."""

    cancel: CancelBooking | None = None
    reschedules: list[Reschedule] = Field(default_factory=list)
    moves: list[MoveBrand] = Field(
        default_factory=list, description="brand moves asked for, applied in order"
    )
    repair_requested: bool = False
    crew_shown_stale: bool = Field(
        False, description="a seat changed hands: the page and the SCC event name the old crew"
    )


class BookingState(BaseModel):
    """Everything the workflow knows of the booking, carried whole through continue-as-new;
    each part of the workflow owns one slice."""

    booking: Booking | None = None
    status: BookingStatus
    round: int = 1
    setup_done: bool = False
    departed: bool = False
    effects: Effects = Field(default_factory=Effects)
    crew: CrewState = Field(default_factory=CrewState)
    texts: TextState = Field(default_factory=TextState)
    guest_page_url: str = Field(
        "",
        description="the guest page's URL now (a brand move changes it); empty until the run "
        "starts, which takes it from the options",
    )
    clocks: ClockState = Field(default_factory=ClockState)
    requests: Requests = Field(default_factory=Requests)
    alerted: list[str] = Field(default_factory=list)
    block_counts: dict[str, int] = Field(default_factory=dict)

    @property
    def validated(self) -> Booking:
        """The booking, once validation has run: every part after it relies on it."""
        assert self.booking is not None
        return self.booking


CharterBookingInput.model_rebuild()
