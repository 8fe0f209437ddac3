"""Stand-in for the JADA Internal Calendar (the dashboard Lambda's URL): token-checked, persisted
to a JSON file, and deliberately without dedup so a duplicate by the product would show."""

from __future__ import annotations

import hmac
import json
import threading
import uuid
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from charters.activities.secrets import SecretReader

REQUIRED = ("event_type", "date", "duration_hours", "location", "guest_name", "booking_ref")


class CalendarStore:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self.entries: dict[str, dict[str, Any]] = (
            json.loads(path.read_text()) if path.exists() else {}
        )

    def save(self) -> None:
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.entries, indent=1))
        tmp.replace(self._path)

    def add(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            entry = {**body, "entry_id": f"cal-{uuid.uuid4().hex[:12]}"}
            self.entries[entry["entry_id"]] = entry
            self.save()
            return entry

    def update(self, entry_id: str, changes: dict[str, Any]) -> dict[str, Any] | None:
        with self._lock:
            entry = self.entries.get(entry_id)
            if entry is None:
                return None
            entry.update(changes)
            entry.setdefault("history", []).append(changes)
            self.save()
            return entry


def calendar_app(
    secrets: SecretReader, token_secret_id: str, header: str, store: CalendarStore
) -> Starlette:
    def authorised(request: Request) -> JSONResponse | None:
        given = request.headers.get(header)
        if not given:
            return JSONResponse({"error": "missing token"}, status_code=401)
        if not hmac.compare_digest(given.encode(), secrets.get(token_secret_id).encode()):
            return JSONResponse({"error": "forbidden"}, status_code=403)
        return None

    async def create(request: Request) -> JSONResponse:
        if (denied := authorised(request)) is not None:
            return denied
        body = await request.json()
        missing = [f for f in REQUIRED if not body.get(f)]
        if missing:
            return JSONResponse({"error": f"missing fields: {missing}"}, status_code=400)
        entry = store.add(body)
        return JSONResponse({"entry_id": entry["entry_id"]}, status_code=201)

    async def lookup(request: Request) -> JSONResponse:
        if (denied := authorised(request)) is not None:
            return denied
        ref = request.query_params.get("booking_ref")
        entries = [e for e in store.entries.values() if ref is None or e.get("booking_ref") == ref]
        return JSONResponse({"entries": entries})

    async def update(request: Request) -> JSONResponse:
        if (denied := authorised(request)) is not None:
            return denied
        entry = store.update(request.path_params["entry_id"], await request.json())
        if entry is None:
            return JSONResponse({"error": "no such entry"}, status_code=404)
        return JSONResponse(entry)

    return Starlette(
        routes=[
            Route("/calendar", create, methods=["POST"]),
            Route("/calendar", lookup, methods=["GET"]),
            Route("/calendar/{entry_id}", update, methods=["PATCH"]),
        ]
    )
