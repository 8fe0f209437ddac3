"""ShipCaptainCrew API, called on the API Gateway URL (CloudFront strips the auth header).

A 401/403 is called "header stripped" only when the configured SCC URL's host is a CloudFront
domain: `*.cloudfront.net`, or a host listed in `scc_cloudfront_hosts` (the distribution's
aliases). Response headers cannot tell: an edge-optimized API Gateway answers through CloudFront
too (`Via: ... (CloudFront)`, `X-Amz-Cf-Id`; API Gateway guide, "Choose an endpoint type"), so a
wrong key there must enter the normal key repair path (SccAuthRejected). A direct probe was
rejected: it needs a second URL we do not have and doubles every failing call."""

from __future__ import annotations

from typing import Any

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from charters.activities.secrets import SecretReader
from charters.errors import (
    IDEMPOTENCY_HEADER,
    SCC_AUTH_REJECTED,
    SCC_HEADER_STRIPPED,
    http_failure,
    send,
    target_gone,
)
from charters.models import (
    CompensationResult,
    CrewView,
    SccCancelRequest,
    SccEventRef,
    SccEventRequest,
    SccUpdateRequest,
)


def scc_notes(charter: CrewView) -> str:
    """Crew-facing notes: never a money figure."""
    parts = [f"Guest: {charter.guest_name}", f"Party of {charter.party_size}"]
    if charter.notes:
        parts.append(charter.notes)
    return " | ".join(parts)


def scc_body(charter: CrewView, idempotency_key: str) -> dict[str, Any]:
    return {
        "event_name": f"Boatsetter Charter - {charter.starts_at:%b} {charter.starts_at.day}",
        "external_ref": idempotency_key,
        "booking_ref": charter.booking_ref,
        "date": charter.starts_at.isoformat(),
        "timezone": charter.timezone,
        "duration_hours": str(charter.duration_hours),
        "location": charter.location,
        "captain": charter.captain.id,
        "crew": [s.id for s in charter.crew],
        "crew_names": {s.id: s.name for s in charter.seats},
        "notes": scc_notes(charter),
        "guest_page_url": charter.guest_page_url,
    }


def is_cloudfront_url(url: str, cloudfront_hosts: list[str]) -> bool:
    """Whether `url` is served by a CloudFront distribution we know of (see the module doc)."""
    parsed = httpx.URL(url)
    host = (parsed.host or "").lower()
    with_port = f"{host}:{parsed.port}" if parsed.port else host
    known = {h.lower() for h in cloudfront_hosts}
    return host.endswith(".cloudfront.net") or host in known or with_port in known


class SccActivities:
    def __init__(
        self,
        http: httpx.Client,
        secrets: SecretReader,
        api_url: str,
        key_header: str,
        key_secret_id: str,
        cloudfront_hosts: list[str] | None = None,
    ) -> None:
        self._http = http
        self._secrets = secrets
        self._api = api_url.rstrip("/")
        self._header = key_header
        self._secret_id = key_secret_id
        self._behind_cloudfront = is_cloudfront_url(self._api, cloudfront_hosts or [])

    def _headers(self) -> dict[str, str]:
        return {self._header: self._secrets.get(self._secret_id)}

    def _raise_for(self, response: httpx.Response) -> None:
        if response.status_code in (401, 403):
            if self._behind_cloudfront:
                raise ApplicationError(
                    "SCC rejected the service key and the answer came through CloudFront, which "
                    f"strips the {self._header} header. Fix: set CHARTERS_SCC_API_URL to the API "
                    "Gateway URL (https://<id>.execute-api.<region>.amazonaws.com/prod), "
                    "or forward "
                    "the header with an origin request policy (AllViewerExceptHostHeader).",
                    type=SCC_HEADER_STRIPPED,
                    non_retryable=True,
                )
            raise ApplicationError(
                "SCC rejected the service key: the SCC Lambda's SERVICE_KEY_HASH is missing or "
                "does not match sha256 of the key in Secrets Manager",
                type=SCC_AUTH_REJECTED,
            )
        if response.status_code not in (200, 201):
            raise http_failure(
                "SCC",
                response,
                "check CHARTERS_SCC_API_URL (the API Gateway stage URL) and what SCC refused "
                "(the message names the request)",
            )

    def events_with_key(self, idempotency_key: str) -> list[dict[str, Any]]:
        """Every event whose external reference is `idempotency_key`."""
        response = send(
            self._http,
            "scc",
            "GET",
            f"{self._api}/events",
            params={"external_ref": idempotency_key},
            headers=self._headers(),
        )
        self._raise_for(response)
        return list(response.json().get("events", []))

    def _patch(self, event_id: str, status: str, charter: CrewView) -> httpx.Response:
        body = {**scc_body(charter, ""), "status": status}
        body.pop("external_ref")
        return send(
            self._http,
            "scc",
            "PATCH",
            f"{self._api}/events/{event_id}",
            json=body,
            headers=self._headers(),
        )

    @activity.defn(name="create_scc_event")
    def create_scc_event(self, req: SccEventRequest) -> SccEventRef:
        """One POST carrying `Idempotency-Key`: SCC answers a repeated key with the event it
        made first and creates nothing (README, "Idempotency"). No look-up first: two
        overlapping attempts would both miss it and both create."""
        response = send(
            self._http,
            "scc",
            "POST",
            f"{self._api}/events",
            json=scc_body(req.charter, req.idempotency_key),
            headers={**self._headers(), IDEMPOTENCY_HEADER: req.idempotency_key},
        )
        self._raise_for(response)
        return SccEventRef(
            event_id=str(response.json()["event_id"]), created=response.status_code == 201
        )

    @activity.defn(name="update_scc_event")
    def update_scc_event(self, req: SccUpdateRequest) -> None:
        """Cancel or reschedule; the body is absolute, so a repeat writes the same."""
        response = self._patch(req.event_id, req.status, req.charter)
        if response.status_code == 404:
            raise target_gone("SCC event", req.event_id)
        self._raise_for(response)

    @activity.defn(name="cancel_scc_event")
    def cancel_scc_event(self, req: SccCancelRequest) -> CompensationResult:
        """Cancels every event carrying the key as its external reference, and `event_id` if
        given, so an event whose creation the workflow never recorded is undone too. An event
        already gone (404) is done, not an error."""
        targets = {
            str(e["event_id"]): e.get("status") for e in self.events_with_key(req.idempotency_key)
        }
        if req.event_id:
            targets.setdefault(req.event_id, None)
        cancelled = []
        for event_id, status in targets.items():
            if status != "cancelled":
                response = self._patch(event_id, "cancelled", req.charter)
                if response.status_code == 404:
                    continue
                self._raise_for(response)
            cancelled.append(event_id)
        return CompensationResult(found=cancelled)
