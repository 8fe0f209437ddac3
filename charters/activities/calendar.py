"""JADA Internal Calendar, reached over HTTPS on the dashboard Lambda's URL."""

from __future__ import annotations

from typing import Any

import httpx
from temporalio import activity

from charters.activities.secrets import SecretReader
from charters.errors import http_failure, send
from charters.models import Booking, CalendarEntryRef, CalendarEntryRequest, CalendarStatusRequest

FIX = (
    "check CHARTERS_CALENDAR_URL (the dashboard Lambda's URL) and what the calendar refused "
    "(the message names the request)"
)


def calendar_body(booking: Booking, idempotency_key: str, status: str) -> dict[str, Any]:
    """The entry as the seeds' calendar takes it, with pay rates and the owner's revenue."""
    money = booking.financials()
    return {
        "event_type": "charter",
        "event_name": f"Boatsetter Charter - {booking.starts_at:%b} {booking.starts_at.day}",
        "booking_ref": booking.booking_ref,
        "idempotency_key": idempotency_key,
        "status": status,
        "date": booking.starts_at.date().isoformat(),
        "start": booking.starts_at.strftime("%H:%M"),
        "timezone": booking.timezone,
        "duration_hours": str(booking.duration_hours),
        "location": booking.location,
        "guest_name": booking.guest.name,
        "party_size": booking.guest.party_size,
        "captain": booking.captain.id,
        "crew": [m.id for m in booking.crew],
        "crew_assignments": [
            {"id": m.id, "name": m.name, "role": role, "hourly_rate": str(m.hourly_rate)}
            for role, m in booking.members
        ],
        "revenue": {
            "gross": str(money.gross),
            "fees": {k: str(v) for k, v in money.fees.items()},
            "crew_pay": str(money.crew_pay),
            "captain_pay": str(money.captain_pay),
            "net": str(money.net),
        },
    }


class CalendarActivities:
    def __init__(
        self,
        http: httpx.Client,
        secrets: SecretReader,
        base_url: str,
        token_header: str,
        token_secret_id: str,
    ) -> None:
        self._http = http
        self._secrets = secrets
        self._base = base_url.rstrip("/")
        self._header = token_header
        self._secret_id = token_secret_id

    def _headers(self) -> dict[str, str]:
        return {self._header: self._secrets.get(self._secret_id)}

    def _find(self, idempotency_key: str, booking_ref: str) -> str | None:
        response = send(
            self._http,
            "calendar",
            "GET",
            f"{self._base}/calendar",
            params={"booking_ref": booking_ref},
            headers=self._headers(),
        )
        if response.status_code != 200:
            raise http_failure("calendar", response, FIX)
        for entry in response.json().get("entries", []):
            if entry.get("idempotency_key") == idempotency_key:
                return str(entry["entry_id"])
        return None

    @activity.defn(name="create_calendar_entry")
    def create_calendar_entry(self, req: CalendarEntryRequest) -> CalendarEntryRef:
        """Look up before create: an earlier attempt's entry is returned, never duplicated."""
        existing = self._find(req.idempotency_key, req.booking.booking_ref)
        if existing:
            return CalendarEntryRef(entry_id=existing, created=False)
        response = send(
            self._http,
            "calendar",
            "POST",
            f"{self._base}/calendar",
            json=calendar_body(req.booking, req.idempotency_key, req.status),
            headers={**self._headers(), "Idempotency-Key": req.idempotency_key},
        )
        if response.status_code not in (200, 201):
            raise http_failure("calendar", response, FIX)
        return CalendarEntryRef(entry_id=str(response.json()["entry_id"]), created=True)

    @activity.defn(name="update_calendar_entry")
    def update_calendar_entry(self, req: CalendarStatusRequest) -> None:
        """Sets the status (and, on reschedule, the new details); a repeat writes the same."""
        body: dict[str, Any] = {"status": req.status}
        if req.booking is not None:
            full = calendar_body(req.booking, "", req.status)
            body.update({k: full[k] for k in ("date", "start", "duration_hours", "event_name")})
        response = send(
            self._http,
            "calendar",
            "PATCH",
            f"{self._base}/calendar/{req.entry_id}",
            json=body,
            headers=self._headers(),
        )
        if response.status_code != 200:
            raise http_failure("calendar", response, FIX)
