"""Crew confirmation endpoint. Opening a magic link changes nothing (mail scanners open links);
only the Accept/Decline POST sends the `crew_confirmation` signal.

Rate limits (in memory, per process; sliding one-minute windows): every request to `/c/{token}`
counts against its client address (default 60 a minute) and against its token (default 10 a
minute), before the token is even checked, so guessing tokens and hammering one link are both
cut off. Over a limit the answer is 429 with `Retry-After`. Behind a reverse proxy the client
address is what the ASGI server resolved (uvicorn's `--forwarded-allow-ips`)."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from charters import contract, magic_links
from charters.activities.secrets import SecretReader
from charters.models import BookingStatus, CrewConfirmation
from charters.pages import render

QUERY_TIMEOUT = timedelta(seconds=8)
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(render(template, **context), status_code=status, headers=SECURITY_HEADERS)


def _message(title: str, message: str, status: int) -> HTMLResponse:
    return _page("message.html", status=status, title=title, message=message)


class SlidingWindowLimiter:
    """At most `limit` requests per key in any `window` seconds. Refused requests do not count,
    so a client that backs off gets through again. Keys are bounded: when there are more than
    `max_keys`, idle ones are dropped, then the oldest."""

    def __init__(
        self,
        limit: int,
        window: float = 60.0,
        *,
        max_keys: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("a rate limit needs limit >= 1 and window > 0")
        self.limit = limit
        self.window = window
        self._max_keys = max_keys
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}

    def retry_after(self, key: str) -> float:
        """0 when `key` may make a request now, else the seconds until it may."""
        hits = self._hits.get(key)
        if not hits:
            return 0.0
        now = self._clock()
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) < self.limit:
            return 0.0
        return max(hits[0] + self.window - now, 0.001)

    def record(self, key: str) -> None:
        hits = self._hits.get(key)
        if hits is None:
            if len(self._hits) >= self._max_keys:
                self._prune()
            hits = self._hits[key] = deque()
        hits.append(self._clock())

    def _prune(self) -> None:
        cutoff = self._clock() - self.window
        for key in [k for k, h in self._hits.items() if not h or h[-1] <= cutoff]:
            del self._hits[key]
        while len(self._hits) >= self._max_keys:
            del self._hits[next(iter(self._hits))]


def _too_many(retry_after: float) -> HTMLResponse:
    response = _message(
        "Too many requests", "Please wait a minute, then open the link from your email again.", 429
    )
    response.headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return response


def confirm_app(
    client_factory: Any,
    secrets: SecretReader,
    magic_key_secret_id: str,
    *,
    per_token_per_minute: int = 10,
    per_client_per_minute: int = 60,
) -> Starlette:
    state: dict[str, Client] = {}
    per_token = SlidingWindowLimiter(per_token_per_minute)
    per_client = SlidingWindowLimiter(per_client_per_minute)

    def limited(request: Request) -> Response | None:
        """Counts the request against its client and its token, or answers 429."""
        client = request.client.host if request.client else "unknown"
        token = request.path_params["token"]
        wait = max(per_client.retry_after(client), per_token.retry_after(token))
        if wait:
            return _too_many(wait)
        per_client.record(client)
        per_token.record(token)
        return None

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state["client"] = await client_factory()
        yield

    async def link_and_status(token: str) -> tuple[magic_links.MagicLink, BookingStatus] | Response:
        key = (await run_in_threadpool(secrets.get, magic_key_secret_id)).encode()
        try:
            link = magic_links.verify(key, token, datetime.now(UTC))
        except magic_links.InvalidToken as exc:
            return _message("Link not valid", f"Sorry, {exc}. Ask operations for a new link.", 403)
        handle = state["client"].get_workflow_handle(link.workflow_id)
        try:
            status = await handle.query(
                contract.QUERY_STATUS, result_type=BookingStatus, rpc_timeout=QUERY_TIMEOUT
            )
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return _message("Charter not found", "This charter is no longer open.", 404)
            return _message(
                "Please try again in a minute",
                "We could not reach the booking just now. Your link is still good.",
                503,
            )
        return link, status

    def seat_page(link: magic_links.MagicLink, status: BookingStatus, answer: str) -> HTMLResponse:
        if link.round != status.round:
            return _message(
                "This invitation was replaced",
                "The charter changed since this email; please use the link in the newest one.",
                410,
            )
        charter = status.charter
        seat = next((s for s in charter.seats if s.id == link.crew_id), None) if charter else None
        if charter is None or seat is None:
            return _message(
                "Not on this charter", "You are no longer assigned to this charter.", 410
            )
        return _page("confirm.html", charter=charter, seat=seat, answer=answer)

    async def show(request: Request) -> Response:
        refused = limited(request)
        if refused is not None:
            return refused
        found = await link_and_status(request.path_params["token"])
        if isinstance(found, Response):
            return found
        link, status = found
        answer = next((a.answer for a in status.crew if a.crew_id == link.crew_id), "pending")
        return seat_page(link, status, answer)

    async def answer(request: Request) -> Response:
        refused = limited(request)
        if refused is not None:
            return refused
        found = await link_and_status(request.path_params["token"])
        if isinstance(found, Response):
            return found
        link, status = found
        form = await request.form()
        decision = form.get("decision")
        if decision not in ("accept", "decline"):
            return _message("Please choose", "Press Accept or Decline.", 400)
        current = next((a.answer for a in status.crew if a.crew_id == link.crew_id), "pending")
        if current in ("accepted", "declined"):
            return seat_page(link, status, current)
        await (
            state["client"]
            .get_workflow_handle(link.workflow_id)
            .signal(
                contract.SIGNAL_CREW_CONFIRMATION,
                CrewConfirmation(
                    crew_id=link.crew_id,
                    decision=decision,  # type: ignore[arg-type]
                    by="crew",
                    round=link.round,
                ),
            )
        )
        return seat_page(link, status, "accepted" if decision == "accept" else "declined")

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/c/{token}", show, methods=["GET"]),
            Route("/c/{token}", answer, methods=["POST"]),
            Route("/healthz", health, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
