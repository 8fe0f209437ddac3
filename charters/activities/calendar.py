"""JADA Internal Calendar, reached over HTTPS on the dashboard Lambda's URL."""

from __future__ import annotations

from typing import Any

import httpx
from temporalio import activity

from charters.activities.secrets import SecretReader
from charters.errors import IDEMPOTENCY_HEADER, http_failure, send, target_gone
from charters.models import (
    Booking,
    CalendarCancelRequest,
    CalendarEntryRef,
    CalendarEntryRequest,
    CalendarStatusRequest,
    CompensationResult,
)

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

    def entries_with_key(self, idempotency_key: str, booking_ref: str) -> list[dict[str, Any]]:
        """Every entry of the booking that carries `idempotency_key`."""
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
        return [
            entry
            for entry in response.json().get("entries", [])
            if entry.get("idempotency_key") == idempotency_key
        ]

    def _patch(self, entry_id: str, body: dict[str, Any]) -> httpx.Response:
        return send(
            self._http,
            "calendar",
            "PATCH",
            f"{self._base}/calendar/{entry_id}",
            json=body,
            headers=self._headers(),
        )

    @activity.defn(name="create_calendar_entry")
    def create_calendar_entry(self, req: CalendarEntryRequest) -> CalendarEntryRef:
        """One POST carrying `Idempotency-Key`: the calendar answers a repeated key with the
        entry it made first and creates nothing (README, "Idempotency"). No look-up first: two
        overlapping attempts would both miss it and both create."""
        response = send(
            self._http,
            "calendar",
            "POST",
            f"{self._base}/calendar",
            json=calendar_body(req.booking, req.idempotency_key, req.status),
            headers={**self._headers(), IDEMPOTENCY_HEADER: req.idempotency_key},
        )
        if response.status_code not in (200, 201):
            raise http_failure("calendar", response, FIX)
        return CalendarEntryRef(
            entry_id=str(response.json()["entry_id"]), created=response.status_code == 201
        )

    @activity.defn(name="update_calendar_entry")
    def update_calendar_entry(self, req: CalendarStatusRequest) -> None:
        """Sets the status (and, on reschedule, the new details); a repeat writes the same."""
        body: dict[str, Any] = {"status": req.status}
        if req.booking is not None:
            full = calendar_body(req.booking, "", req.status)
            body.update({k: full[k] for k in ("date", "start", "duration_hours", "event_name")})
        response = self._patch(req.entry_id, body)
        if response.status_code == 404:
            raise target_gone("calendar entry", req.entry_id)
        if response.status_code != 200:
            raise http_failure("calendar", response, FIX)

    @activity.defn(name="cancel_calendar_entry")
    def cancel_calendar_entry(self, req: CalendarCancelRequest) -> CompensationResult:
        """Cancels every entry carrying the key, and `entry_id` if given, so an entry whose
        creation the workflow never recorded is undone too. An entry already gone (404) is
        done, not an error; a repeat finds the same entries cancelled."""
        found = self.entries_with_key(req.idempotency_key, req.booking_ref)
        targets = {str(e["entry_id"]): e.get("status") for e in found}
        if req.entry_id:
            targets.setdefault(req.entry_id, None)
        cancelled = []
        for entry_id, status in targets.items():
            if status != "cancelled":
                response = self._patch(entry_id, {"status": "cancelled"})
                if response.status_code == 404:
                    continue
                if response.status_code != 200:
                    raise http_failure("calendar", response, FIX)
            cancelled.append(entry_id)
        return CompensationResult(found=cancelled)
