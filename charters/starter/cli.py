"""`charters`: one binary for the operator commands, the worker, the web endpoints and the stack."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
from pydantic import ValidationError
from rich.console import Console
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import WorkflowAlreadyStartedError

from charters import contract
from charters.models import (
    ApproveSccKeyRepair,
    AssignCrew,
    BookingResult,
    BookingStatus,
    CancelBooking,
    CrewConfirmation,
    CrewMember,
    Reschedule,
    describe_validation_error,
)
from charters.settings import Settings
from charters.starter import book as booking_start
from charters.starter.views import show_result, show_status
from charters.temporal_client import connect

app = typer.Typer(
    help="Temporal Charters: durable charter bookings.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
ops = typer.Typer(help="Operator fixes applied from outside the workflow.", no_args_is_help=True)
app.add_typer(ops, name="ops")
console = Console()
err = Console(stderr=True)


def _settings() -> Settings:
    """Settings from the environment; locally, plus the running stack's payload key ring."""
    return Settings().with_local_key_ring()


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


async def _status(settings: Settings, workflow_id: str) -> BookingStatus:
    client = await connect(settings)
    return await client.get_workflow_handle(workflow_id).query(
        contract.QUERY_STATUS, result_type=BookingStatus
    )


async def _signal(settings: Settings, workflow_id: str, name: str, arg: Any) -> None:
    client = await connect(settings)
    await client.get_workflow_handle(workflow_id).signal(name, arg)


# ---- bookings ------------------------------------------------------------------------------


@app.command()
def book(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="booking YAML/JSON")],
    wait: Annotated[bool, typer.Option(help="wait for the result")] = False,
) -> None:
    """Validate a booking file and start its workflow (refused if that booking exists)."""
    settings = _settings()
    try:
        booking = booking_start.validate(booking_start.load_booking_file(file))
    except ValidationError as exc:
        raise _fail(f"invalid booking {file}: {describe_validation_error(exc)}") from None
    except ValueError as exc:
        raise _fail(str(exc)) from None

    async def go() -> None:
        client = await connect(settings)
        try:
            handle = await booking_start.start_booking(client, settings, booking)
        except WorkflowAlreadyStartedError:
            wf = contract.workflow_id_for(booking.booking_ref)
            raise _fail(
                f"booking {booking.booking_ref} already exists as workflow {wf}: "
                f"see `charters status {wf}` or {settings.temporal_ui_link(wf)}"
            ) from None
        console.print(f"Started [bold]{handle.id}[/]")
        console.print(f"Web UI: {settings.temporal_ui_link(handle.id)}")
        console.print(f"Guest page: {settings.guest_page_url(booking.page_slug)}")
        if wait:
            show_result(console, await handle.result())

    asyncio.run(go())


@app.command()
def status(
    workflow_id: str,
    watch: Annotated[bool, typer.Option(help="refresh every 2 s until it completes")] = False,
) -> None:
    """Where a booking stands: stage, each step, each crew answer, what blocks it."""
    settings = _settings()
    while True:
        try:
            current = asyncio.run(_status(settings, workflow_id))
        except Exception as exc:  # noqa: BLE001 - report any lookup failure plainly
            raise _fail(f"cannot query {workflow_id}: {exc}") from None
        if watch:
            console.clear()
        show_status(console, current, settings.temporal_ui_link(workflow_id))
        if not watch or current.stage in ("confirmed", "cancelled", "failed"):
            return
        time.sleep(2)


@app.command("list")
def list_bookings(
    stage: Annotated[str | None, typer.Option(help="e.g. awaiting-crew, confirmed")] = None,
    blocked_on: Annotated[str | None, typer.Option(help="e.g. scc-service-key-hash")] = None,
    date: Annotated[str | None, typer.Option(help="charter date YYYY-MM-DD (UTC day)")] = None,
    limit: int = 50,
) -> None:
    """Bookings from the visibility store, filtered by stage, what blocks them, or date."""
    from rich.table import Table

    from charters.starter.listing import visibility_query

    settings = _settings()
    query = visibility_query(stage=stage, blocked_on=blocked_on, date=date)

    async def go() -> list[Any]:
        client = await connect(settings)
        return [wf async for wf in client.list_workflows(query, limit=limit)]

    table = Table(
        "workflow", "booking", "charter (UTC)", "stage", "blocked on", "crew pending", "status"
    )
    for wf in asyncio.run(go()):
        attrs = {k.name: v for k, v in wf.typed_search_attributes}
        charter_at = attrs.get("CharterDate")
        table.add_row(
            wf.id,
            str(attrs.get("BookingRef", "")),
            charter_at.strftime("%Y-%m-%d %H:%M") if charter_at else "",
            str(attrs.get("BookingStage", "")),
            str(attrs.get("BlockedOn", "")),
            str(attrs.get("CrewPending", "")),
            wf.status.name if wf.status else "",
        )
    console.print(table)
    console.print(f"[dim]query: {query}[/]")


@app.command()
def confirm(
    workflow_id: str,
    crew_id: str,
    accept: Annotated[bool, typer.Option("--accept/--decline")] = True,
    by_operator: Annotated[str | None, typer.Option(help="operator confirming for them")] = None,
) -> None:
    """Record a crew member's answer (as they would by magic link, or by an operator)."""
    signal = CrewConfirmation(
        crew_id=crew_id,
        decision="accept" if accept else "decline",
        by=f"operator:{by_operator}" if by_operator else "crew",
    )
    asyncio.run(_signal(_settings(), workflow_id, contract.SIGNAL_CREW_CONFIRMATION, signal))
    console.print(f"{crew_id}: {signal.decision} sent to {workflow_id}")


@app.command()
def assign(workflow_id: str, replaces: str, member_file: Path) -> None:
    """Replace a crew member (e.g. after a decline) with the member described in a YAML file."""
    try:
        member = CrewMember.model_validate(booking_start.load_booking_file(member_file))
    except ValidationError as exc:
        raise _fail(f"invalid crew member: {describe_validation_error(exc)}") from None
    signal = AssignCrew(replaces=replaces, member=member)
    asyncio.run(_signal(_settings(), workflow_id, contract.SIGNAL_ASSIGN_CREW, signal))
    console.print(f"{member.id} assigned in place of {replaces}")


@app.command()
def cancel(workflow_id: str, reason: str = "cancelled by operator") -> None:
    """Cancel a booking: calendar, SCC, guest page and crew are told, once each."""
    asyncio.run(
        _signal(
            _settings(), workflow_id, contract.SIGNAL_CANCEL_BOOKING, CancelBooking(reason=reason)
        )
    )
    console.print(f"cancellation sent to {workflow_id}")


@app.command()
def reschedule(
    workflow_id: str,
    starts_at: Annotated[datetime, typer.Option(help="new local start, e.g. 2027-05-31T10:00")],
    duration_hours: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Move a booking: calendar, SCC, guest page and crew follow."""
    signal = Reschedule(
        starts_at=starts_at,
        duration_hours=Decimal(duration_hours) if duration_hours else None,
    )
    asyncio.run(_signal(_settings(), workflow_id, contract.SIGNAL_RESCHEDULE, signal))
    console.print(f"reschedule sent to {workflow_id}")


@app.command("approve-repair")
def approve_repair(workflow_id: str, by: str = "operator") -> None:
    """Let the worker set SERVICE_KEY_HASH on the SCC Lambda from the key in Secrets Manager."""
    asyncio.run(
        _signal(
            _settings(),
            workflow_id,
            contract.SIGNAL_APPROVE_SCC_KEY_REPAIR,
            ApproveSccKeyRepair(approved_by=by),
        )
    )
    console.print(f"SCC key repair approved for {workflow_id}")


@app.command()
def result(workflow_id: str) -> None:
    """Wait for a booking to finish and show what it made."""
    settings = _settings()

    async def go() -> BookingResult:
        client = await connect(settings)
        return await client.get_workflow_handle(workflow_id, result_type=BookingResult).result()

    try:
        show_result(console, asyncio.run(go()))
    except WorkflowFailureError as exc:
        raise _fail(f"{workflow_id} failed: {exc.cause}", 1) from None


# ---- operator fixes ------------------------------------------------------------------------


@ops.command("fix-scc-key-hash")
def fix_scc_key_hash() -> None:
    """Set SERVICE_KEY_HASH on the SCC Lambda to sha256 of the service key, keeping the rest."""
    from charters.activities.scc_lambda import merge_service_key_hash
    from charters.activities.secrets import SecretReader
    from charters.worker.wiring import aws_clients

    settings = _settings()
    aws = aws_clients(settings)
    key = SecretReader(aws.secretsmanager).get(settings.secret_scc_service_key)
    changed = merge_service_key_hash(aws.lambda_, settings.scc_lambda_function, key)
    console.print("SERVICE_KEY_HASH " + ("set" if changed else "was already correct"))


# ---- processes -----------------------------------------------------------------------------


@app.command()
def worker() -> None:
    """Run a worker (stateless; run as many as you like)."""
    import os

    from charters.observability import configure_logging
    from charters.worker.main import run_worker

    settings = _settings()
    configure_logging(json=settings.log_json)
    code = asyncio.run(run_worker(settings))
    # The worker has drained: exit without interpreter finalization, where an activity thread
    # that is still stuck, or the SDK core's own threads, can abort the process (SIGABRT).
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@app.command("confirm-server")
def confirm_server() -> None:
    """Serve the crew confirmation endpoint (magic links)."""
    from charters.activities.secrets import SecretReader
    from charters.web.confirm_app import confirm_app
    from charters.worker.wiring import aws_client

    settings = _settings()
    secrets = SecretReader(aws_client(settings, "secretsmanager"))
    web = confirm_app(
        lambda: connect(settings),
        secrets,
        settings.secret_magic_link_key,
        per_token_per_minute=settings.confirm_limit_per_token_per_minute,
        per_client_per_minute=settings.confirm_limit_per_client_per_minute,
    )
    uvicorn.run(web, host=settings.confirm_host, port=settings.confirm_port, log_level="warning")


@app.command("codec-server")
def codec_server() -> None:
    """Serve the codec server: decrypts payloads for the Web UI and `temporal --codec-endpoint`."""
    from urllib.parse import urlsplit

    from charters.codec import codec_from_key_ring
    from charters.web.codec_server import codec_app
    from charters.web.oidc import oidc_verifier

    settings = _settings()
    if settings.codec_keys is None or settings.codec_auth_token is None:
        raise _fail("set CHARTERS_CODEC_KEYS and CHARTERS_CODEC_AUTH_TOKEN first")
    ui = urlsplit(settings.temporal_ui_url)
    web = codec_app(
        codec_from_key_ring(settings.codec_keys.get_secret_value()),
        settings.codec_auth_token.get_secret_value(),
        settings.codec_cors_origins or [f"{ui.scheme}://{ui.netloc}"],
        trust_ui_origin=settings.codec_trust_ui_origin and settings.profile == "local",
        verifier=oidc_verifier(settings),
    )
    uvicorn.run(web, host=settings.codec_host, port=settings.codec_port, log_level="warning")


@app.command("codec-keygen")
def codec_keygen(kid: Annotated[str, typer.Argument(help="key id, e.g. 2026-11")]) -> None:
    """Print a new key-ring entry; put it first in CHARTERS_CODEC_KEYS to make it active."""
    from charters.codec import generate_key

    console.print(f"{kid}:{generate_key()}")


def _register_plugins() -> None:
    """Commands that live outside the product (the local stack, demo, bench, chaos) register
    themselves through the `charters.cli` entry point group: the product never imports them."""
    from importlib.metadata import entry_points

    for ep in entry_points(group="charters.cli"):
        ep.load()(app, ops)


_register_plugins()
