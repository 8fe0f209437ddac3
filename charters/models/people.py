"""People's actions on a booking (updates and signals) and the workflow's verdict."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

from charters.models.booking import (
    CrewMember,
    Role,
)


class CrewConfirmation(BaseModel):
    crew_id: str
    decision: Literal["accept", "decline"]
    by: str = "crew"
    round: int | None = Field(None, description="invitation round of a magic link; None: current")


class AssignCrew(BaseModel):
    replaces: str
    member: CrewMember


class CancelBooking(BaseModel):
    reason: str = "cancelled by operator"


class Reschedule(BaseModel):
    starts_at: datetime
    duration_hours: Decimal | None = None


class ApproveSccKeyRepair(BaseModel):
    approved_by: str = "operator"


class ResolveBlock(BaseModel):
    """An operator's answer to a blocked step: try it again now, or skip it where skipping is
    safe (the step's own rule; a refused skip says why)."""

    action: Literal["retry", "skip"] = "retry"
    step: str | None = Field(None, description="the blocked step; None: whatever is blocked")
    by: str = "operator"


class EmailBounced(BaseModel):
    """SES told us (bounce, complaint, or a rejected send) that an address does not receive our
    mail. A crew member's permanent bounce blocks their seat until an operator fixes the address
    or replaces them; a transient one (a full mailbox) sends that email again later; the guest's
    and an operations alert's are recorded in `status` and never hold the booking."""

    crew_id: str | None = None
    kind: Literal["bounce", "complaint", "rejected"]
    reason: str
    recipient: Literal["crew", "guest", "operations"] = "crew"
    transient: bool = Field(False, description="SES bounceType Transient: try again later")
    message_id: str | None = Field(None, description="SES mail.messageId of the bounced email")


class MoveBrand(BaseModel):
    """Move the booking to another brand: its page, emails and links follow (`move_brand`)."""

    brand: str = Field(min_length=1, max_length=63)
    by: str = "operator"


class Verdict(BaseModel):
    """The workflow's own answer to a person's action: what the page or the CLI shows."""

    recorded: bool
    code: str = Field(description="`recorded`, or why not: contract.REFUSED_*")
    message: str


class CrewAnswer(BaseModel):
    crew_id: str
    name: str
    role: Role
    answer: Literal["pending", "accepted", "declined", "replaced"] = "pending"
    by: str | None = None
    reminders_sent: int = 0
