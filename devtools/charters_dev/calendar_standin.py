"""Stand-in for the JADA Internal Calendar (the dashboard Lambda's URL): token-checked, persisted
to a JSON file, and holding the calendar to the contract the README states for JADA: a create
without an `Idempotency-Key` header is refused (400), and a repeat of a key answers 200 with the
entry the key made first and creates nothing. The key is kept on its entry, so it survives a
restart of the stand-in. Nothing else is deduplicated, so a duplicate by the product would show.

The handlers are async but never block the event loop: the token check (a Secrets Manager call
when the cache expires) and the file writes run in Starlette's thread pool."""

from __future__ import annotations

import hmac
import json
import threading
import uuid
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from charters.activities.secrets import SecretReader

REQUIRED = ("event_type", "date", "duration_hours", "location", "guest_name", "booking_ref")
IDEMPOTENCY_HEADER = "Idempotency-Key"
KEY_FIELD = "idempotency_key"
MISSING_KEY = (
    f"missing {IDEMPOTENCY_HEADER} header: every create must carry one (a repeat with the same "
    "key returns the entry it created first and creates nothing)"
)


def _copy(entry: dict[str, Any]) -> dict[str, Any]:
    """What a response may serialise while other threads keep writing the store."""
    return {k: list(v) if isinstance(v, list) else v for k, v in entry.items()}


class CalendarStore:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self.entries: dict[str, dict[str, Any]] = (
            json.loads(path.read_text()) if path.exists() else {}
        )
        self._by_key = {
            str(e[KEY_FIELD]): entry_id for entry_id, e in self.entries.items() if e.get(KEY_FIELD)
        }

    def save(self) -> None:
        """The whole file, atomically; compact, because an indented dump takes json's pure-Python
        encoder (six times slower, on every write of a file that grows with each booking)."""
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.entries))
        tmp.replace(self._path)

    def find(self, booking_ref: str | None) -> list[dict[str, Any]]:
        with self._lock:
            return [
                _copy(e)
                for e in self.entries.values()
                if booking_ref is None or e.get("booking_ref") == booking_ref
            ]

    def add(self, key: str, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """The entry `key` made, created now unless the key made one before: (entry, created).
        The look-up and the insert share the lock, so concurrent repeats create one entry."""
        with self._lock:
            known = self._by_key.get(key)
            if known is not None and known in self.entries:
                return _copy(self.entries[known]), False
            entry = {**body, KEY_FIELD: key, "entry_id": f"cal-{uuid.uuid4().hex[:12]}"}
            self.entries[entry["entry_id"]] = entry
            self._by_key[key] = entry["entry_id"]
            self.save()
            return _copy(entry), True

    def update(self, entry_id: str, changes: dict[str, Any]) -> dict[str, Any] | None:
        with self._lock:
            entry = self.entries.get(entry_id)
            if entry is None:
                return None
            entry.update(changes)
            entry.setdefault("history", []).append(changes)
            self.save()
            return _copy(entry)


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
        if (denied := await run_in_threadpool(authorised, request)) is not None:
            return denied
        key = request.headers.get(IDEMPOTENCY_HEADER, "").strip()
        if not key:
            return JSONResponse({"error": MISSING_KEY}, status_code=400)
        body = await request.json()
        missing = [f for f in REQUIRED if not body.get(f)]
        if missing:
            return JSONResponse({"error": f"missing fields: {missing}"}, status_code=400)
        entry, created = await run_in_threadpool(store.add, key, body)
        return JSONResponse({"entry_id": entry["entry_id"]}, status_code=201 if created else 200)

    async def lookup(request: Request) -> JSONResponse:
        if (denied := await run_in_threadpool(authorised, request)) is not None:
            return denied
        entries = await run_in_threadpool(store.find, request.query_params.get("booking_ref"))
        return JSONResponse({"entries": entries})

    async def update(request: Request) -> JSONResponse:
        if (denied := await run_in_threadpool(authorised, request)) is not None:
            return denied
        changes = await request.json()
        entry = await run_in_threadpool(store.update, request.path_params["entry_id"], changes)
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
