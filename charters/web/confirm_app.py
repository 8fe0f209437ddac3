"""Crew confirmation endpoint. Opening a magic link changes nothing (mail scanners open links):
the email's link carries the intended answer (`?d=accept`), so the page shows that one answer
as the focused button and one press confirms it, through the `crew_confirmation` update whose
verdict the page shows. No script submits the form: a scanner that runs scripts answers nothing.

Every state has its own page, status code and `X-Confirm-State` header, with the security
headers on every response, errors included (see STATES). Nothing a person does answers 500.

SMS carry a short link, `/s/{code}` (magic_links.short_code): a compact signed form of the same
magic link, which redirects to that link's page.

Rate limits (in memory, per process; sliding one-minute windows): every request to `/c/{token}`
counts against its client address (default 60 a minute) and against its token (default 10 a
minute), before the token is even checked, so guessing tokens and hammering one link are both
cut off. Over a limit the answer is 429 with `Retry-After`. Behind a reverse proxy the client
address is what the ASGI server resolved (uvicorn's `--forwarded-allow-ips`)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode

from charters import contract, magic_links
from charters.actions import act, ask
from charters.activities.secrets import SecretReader
from charters.models import BookingStatus, CrewConfirmation, Verdict
from charters.pages import render
from charters.web.ratelimit import SlidingWindowLimiter

T = TypeVar("T")

__all__ = ["SECURITY_HEADERS", "STATES", "SlidingWindowLimiter", "confirm_app"]

log = logging.getLogger(__name__)
QUERY_TIMEOUT = timedelta(seconds=8)
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}

# state -> (HTTP status, page title, message). `pending`, `answered` and `recorded` show the
# charter (confirm.html); the others a message page.
STATES: dict[str, tuple[int, str, str]] = {
    "pending": (200, "", ""),
    "answered": (200, "", ""),
    "recorded": (200, "", ""),
    "replaced": (
        410,
        "You are no longer on this charter",
        "Someone else took this seat. Thank you all the same; no need to do anything.",
    ),
    "rescheduled": (
        409,
        "This charter changed",
        "It was rescheduled or changed since this email: please use the link in the newest one.",
    ),
    "cancelled": (410, "This charter was cancelled", "It was cancelled: no need to come in."),
    "completed": (
        410,
        "This charter is closed",
        "Its crew is settled, so answers are no longer taken. Questions: ask operations.",
    ),
    "expired": (
        410,
        "This link has expired",
        "Links are good for two weeks. Ask operations for a new one.",
    ),
    "tampered": (
        403,
        "Link not valid",
        "Sorry, this link is not valid. Please open it from your email, or ask operations.",
    ),
    "unknown": (404, "Charter not found", "This charter is no longer open."),
    "choose": (400, "Please choose", "Press Accept or Decline."),
    "busy": (
        503,
        "Please try again in a minute",
        "We could not reach the booking just now. Your link is still good.",
    ),
    "not-found": (404, "Page not found", "Please open the link from your email."),
    "method": (405, "Not allowed", "Please open the link from your email."),
    "error": (
        503,
        "Please try again in a minute",
        "Something went wrong on our side. Your link is still good.",
    ),
}

# A refused update's code -> the state its page shows.
REFUSAL_STATES = {
    contract.REFUSED_ALREADY_ANSWERED: "answered",
    contract.REFUSED_REPLACED: "replaced",
    contract.REFUSED_UNKNOWN_MEMBER: "replaced",
    contract.REFUSED_SUPERSEDED: "rescheduled",
    contract.REFUSED_CANCELLED: "cancelled",
    contract.REFUSED_DEPARTED: "completed",
    contract.REFUSED_CLOSED: "completed",
    contract.REFUSED_UNKNOWN_BOOKING: "unknown",
    contract.REFUSED_INVALID: "choose",
}


def _page(template: str, state: str, status: int, **context: Any) -> HTMLResponse:
    return HTMLResponse(
        render(template, **context),
        status_code=status,
        headers={**SECURITY_HEADERS, "X-Confirm-State": state},
    )


def state_page(state: str, detail: str | None = None) -> HTMLResponse:
    """The message page of a state; `detail` (a verdict's message) replaces the default text."""
    status, title, message = STATES[state]
    return _page("message.html", state, status, title=title, message=detail or message)


def _too_many(retry_after: float) -> HTMLResponse:
    response = _page(
        "message.html",
        "too-many",
        429,
        title="Too many requests",
        message="Please wait a minute, then open the link from your email again.",
    )
    response.headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return response


class SecurityHeaders:
    """Adds the security headers to every response, whichever handler (or Starlette) made it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                for name, value in SECURITY_HEADERS.items():
                    if name.lower().encode() not in present:
                        headers.append((name.lower().encode(), value.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


CLOSED_STAGES = contract.CLOSED_TO_CREW_STAGES
"""Stages past the point where a crew answer can count."""


def seat_state(link: magic_links.MagicLink, status: BookingStatus) -> tuple[str, str]:
    """Which page a valid link shows, from the workflow's status; and the member's answer."""
    answer = next((a.answer for a in status.crew if a.crew_id == link.crew_id), None)
    charter = status.charter
    seated = charter is not None and any(s.id == link.crew_id for s in charter.seats)
    if status.outcome == "cancelled" or status.stage in ("cancelled", "cancelling"):
        return "cancelled", answer or "pending"
    if answer is None or answer == "replaced" or not seated:
        return "replaced", answer or "pending"
    if link.round != status.round:
        return "rescheduled", answer
    if answer in ("accepted", "declined"):
        return "answered", answer
    if status.outcome == "completed" or status.stage in CLOSED_STAGES:
        return "completed", answer
    return "pending", answer


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

    refreshed = {"at": 0.0}

    async def under_key_ring(check: Callable[[list[bytes]], T]) -> T:
        """`check` under the key ring of a rotation's overlap (AWSCURRENT, AWSPREVIOUS); a token
        that fits neither makes one fresh read (at most every 10 s) in case the worker already
        signs with a value this process has not cached yet."""
        keys = await run_in_threadpool(secrets.get_with_previous, magic_key_secret_id)
        try:
            return check([k.encode() for k in keys])
        except magic_links.ExpiredToken:
            raise
        except magic_links.InvalidToken:
            if time.monotonic() - refreshed["at"] < 10.0:
                raise
            refreshed["at"] = time.monotonic()
            keys = await run_in_threadpool(secrets.get_with_previous, magic_key_secret_id, True)
            return check([k.encode() for k in keys])

    async def verified(token: str) -> magic_links.MagicLink:
        return await under_key_ring(
            lambda keys: magic_links.verify_any(keys, token, datetime.now(UTC))
        )

    async def link_and_status(token: str) -> tuple[magic_links.MagicLink, BookingStatus] | Response:
        try:
            link = await verified(token)
        except magic_links.ExpiredToken:
            return state_page("expired")
        except magic_links.InvalidToken:
            return state_page("tampered")
        handle = state["client"].get_workflow_handle(link.workflow_id)
        try:
            described = await handle.describe(rpc_timeout=QUERY_TIMEOUT)
            status = await ask(handle, contract.QUERY_STATUS, BookingStatus, QUERY_TIMEOUT)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return state_page("unknown")
            return state_page("busy")
        except WorkflowQueryFailedError:
            return state_page("busy")
        if described.status != WorkflowExecutionStatus.RUNNING and status.outcome is None:
            # Closed without an outcome (terminated, failed, timed out): nothing more counts.
            status = status.model_copy(update={"stage": "completed"})
        return link, status

    def seat_page(
        link: magic_links.MagicLink, status: BookingStatus, page: str, answer: str, intent: str
    ) -> HTMLResponse:
        if page not in ("pending", "answered", "recorded"):
            return state_page(page)
        charter = status.charter
        seat = next(s for s in charter.seats if s.id == link.crew_id) if charter else None
        return _page(
            "confirm.html",
            page,
            STATES[page][0],
            charter=charter,
            seat=seat,
            answer=answer,
            intent=intent if intent in ("accept", "decline") else None,
        )

    async def show(request: Request) -> Response:
        refused = limited(request)
        if refused is not None:
            return refused
        found = await link_and_status(request.path_params["token"])
        if isinstance(found, Response):
            return found
        link, status = found
        page, answer = seat_state(link, status)
        return seat_page(link, status, page, answer, request.query_params.get("d", ""))

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
            return state_page("choose")
        page, current = seat_state(link, status)
        wanted = "accepted" if decision == "accept" else "declined"
        if page == "answered":
            # A link answers once: a forwarded email cannot flip a recorded answer (a change
            # of mind goes through operations, `charters confirm`). Nothing is sent.
            return seat_page(link, status, page, current, "")
        if page != "pending":
            return state_page(page)
        verdict = await act(
            state["client"],
            link.workflow_id,
            contract.UPDATE_CREW_CONFIRMATION,
            CrewConfirmation(
                crew_id=link.crew_id,
                decision=decision,  # type: ignore[arg-type]
                by="crew",
                round=link.round,
            ),
        )
        return verdict_page(link, status, verdict, wanted)

    def verdict_page(
        link: magic_links.MagicLink, status: BookingStatus, verdict: Verdict, wanted: str
    ) -> HTMLResponse:
        if verdict.recorded:
            return seat_page(link, status, "recorded", wanted, "")
        if verdict.code == contract.REFUSED_ALREADY_ANSWERED:
            return seat_page(link, status, "answered", wanted, "")
        return state_page(REFUSAL_STATES.get(verdict.code, "choose"), verdict.message)

    async def short(request: Request) -> Response:
        """`/s/{code}`, the SMS's short link: the same magic link, so it redirects to that
        link's page (`/c/{token}`, same expiry, same verdicts); a bad or expired code gets the
        same pages as a bad or expired token."""
        refused = limited(request)
        if refused is not None:
            return refused
        code = request.path_params["token"]
        try:
            link, key = await under_key_ring(
                lambda keys: magic_links.verify_short_any(keys, code, datetime.now(UTC))
            )
        except magic_links.ExpiredToken:
            return state_page("expired")
        except magic_links.InvalidToken:
            return state_page("tampered")
        return RedirectResponse(
            f"/c/{magic_links.sign(key, link)}",
            status_code=303,
            headers={**SECURITY_HEADERS, "X-Confirm-State": "short-link"},
        )

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def not_found(request: Request, exc: Exception) -> Response:
        code = exc.status_code if isinstance(exc, HTTPException) else 404
        return state_page("method" if code == 405 else "not-found")

    async def failed(request: Request, exc: Exception) -> Response:
        """What nobody foresaw: logged, and a page that says try again (503, not 500)."""
        log.exception("confirmation request failed: %s", type(exc).__name__)
        return state_page("error")

    return Starlette(
        routes=[
            Route("/c/{token}", show, methods=["GET"]),
            Route("/c/{token}", answer, methods=["POST"]),
            Route("/s/{token}", short, methods=["GET"]),
            Route("/healthz", health, methods=["GET"]),
        ],
        lifespan=lifespan,
        middleware=[Middleware(SecurityHeaders)],
        # Exception (500) is handled outside the middleware: its page carries the headers.
        exception_handlers={404: not_found, 405: not_found, Exception: failed},
    )
