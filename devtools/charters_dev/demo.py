"""`charters demo`: the seed charter booked end to end on the local stack, crew links clicked
over HTTP as crew would click them."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import WorkflowAlreadyStartedError

from charters import contract
from charters.actions import ask, settled
from charters.models import ApproveSccKeyRepair, Booking, BookingResult, BookingStatus
from charters.settings import Settings
from charters.starter import book as booking_start
from charters.starter.views import show_result, show_status
from charters.temporal_client import connect
from charters_dev.mailbox import sent_mail
from charters_dev.stack import DevStack


def next_may_30(data: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The seeds' charter is on May 30: keep it on the next May 30 so it is in the future."""
    starts = datetime.fromisoformat(str(data["starts_at"]))
    year = now.year if (now.month, now.day) < (5, 30) else now.year + 1
    return {**data, "starts_at": starts.replace(year=year, month=5, day=30).isoformat()}


def follow_magic_links(moto_url: str, booking: Booking, decision: str = "accept") -> list[str]:
    """Open each crew member's link (a GET changes nothing), then press the button (POST)."""
    pressed: list[str] = []
    emails = {m.email for _, m in booking.members}
    with httpx.Client(timeout=10) as http:
        for mail in sent_mail(moto_url):
            links = mail.magic_links()
            if booking.booking_ref not in mail.subject or not links or not set(mail.to) & emails:
                continue
            page = http.get(links[decision])
            page.raise_for_status()
            http.post(links[decision], data={"decision": decision}).raise_for_status()
            pressed.extend(mail.to)
    return pressed


async def _wait_for_stage(
    client: Client, workflow_id: str, stages: set[str], stop_when_blocked: bool = True
) -> BookingStatus:
    handle = client.get_workflow_handle(workflow_id)
    while True:
        status = await ask(handle, contract.QUERY_STATUS, BookingStatus)
        blocked = stop_when_blocked and status.blocked_on == contract.BLOCKED_SCC_KEY_HASH
        if status.stage in stages or blocked:
            return status
        await asyncio.sleep(0.3)


async def _demo(settings: Settings, console: Console, file: Path) -> int:
    data = next_may_30(booking_start.load_booking_file(file), datetime.now())
    booking = booking_start.validate(data)
    client = await connect(settings)
    wf = contract.workflow_id_for(booking.booking_ref)
    try:
        handle = await booking_start.start_booking(client, settings, booking)
        console.print(f"Booked [bold]{booking.booking_ref}[/] as workflow [bold]{handle.id}[/]")
    except WorkflowAlreadyStartedError:
        handle = client.get_workflow_handle(wf, result_type=BookingResult)
        console.print(f"{booking.booking_ref} is already booked as {wf}; following it")
    console.print(f"Web UI: {settings.temporal_ui_link(wf)}")
    status = await _wait_for_stage(
        client, wf, {"awaiting-crew", "confirmed", "failed", "cancelled"}
    )
    if status.blocked_on == contract.BLOCKED_SCC_KEY_HASH:
        show_status(console, status, settings.temporal_ui_link(wf))
        console.print("[yellow]Approving the repair so the worker sets the hash…[/]")
        await handle.signal(
            contract.SIGNAL_APPROVE_SCC_KEY_REPAIR, ApproveSccKeyRepair(approved_by="demo")
        )
        status = await _wait_for_stage(
            client, wf, {"awaiting-crew", "confirmed", "failed"}, stop_when_blocked=False
        )
    moto_url = settings.aws_endpoint_url or ""
    deadline = time.monotonic() + 30
    pressed: list[str] = []
    while status.stage == "awaiting-crew" and not pressed and time.monotonic() < deadline:
        pressed = follow_magic_links(moto_url, booking)
        await asyncio.sleep(0.3)
    for who in pressed:
        console.print(f"  crew link followed and accepted: {who}")
    try:
        result = await settled(handle, timeout=120)
    except WorkflowFailureError as exc:
        console.print(f"[bold red]booking failed:[/] {exc.cause}")
        return 1
    show_result(console, result)
    console.print(
        f"Guest page: {result.guest_page_url} "
        f"(locally: {moto_url}/{settings.guest_bucket}/{result.guest_page_key})"
    )
    console.print(f"Web UI: {settings.temporal_ui_link(wf)}")
    return 0


def run_demo(
    settings: Settings, console: Console, file: Path, *, exit_when_done: bool, broken: str | None
) -> int:
    running = DevStack.running(settings)
    stack = None
    if running is None:
        console.print("Starting the local stack (Temporal dev server, moto, stand-ins, worker)…")
        stack = DevStack(settings, scc_key_hash=broken != "scc-key-hash", fresh=True).start()
        settings = stack.settings
    try:
        code = asyncio.run(_demo(settings, console, file))
        if stack is not None and not exit_when_done:
            console.print("Stack stays up for the Web UI; Ctrl-C stops it.")
            while True:
                time.sleep(3600)
        return code
    except KeyboardInterrupt:
        return 0
    finally:
        if stack is not None:
            stack.stop()
