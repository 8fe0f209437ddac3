"""Crew confirmation endpoint. Opening a magic link changes nothing (mail scanners open links);
only the Accept/Decline POST sends the `crew_confirmation` signal."""

from __future__ import annotations

from collections.abc import AsyncIterator
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


def confirm_app(client_factory: Any, secrets: SecretReader, magic_key_secret_id: str) -> Starlette:
    state: dict[str, Client] = {}

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
        found = await link_and_status(request.path_params["token"])
        if isinstance(found, Response):
            return found
        link, status = found
        answer = next((a.answer for a in status.crew if a.crew_id == link.crew_id), "pending")
        return seat_page(link, status, answer)

    async def answer(request: Request) -> Response:
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
