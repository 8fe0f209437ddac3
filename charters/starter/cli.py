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
    settings = Settings()
    if settings.profile == "local":
        from charters.devstack.stack import with_local_codec

        settings = with_local_codec(settings)
    return settings


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


@ops.command("break-scc-key-hash")
def break_scc_key_hash() -> None:
    """Local stack only: remove SERVICE_KEY_HASH, as in the seeds' incident."""
    from charters.devstack.seed import set_service_key_hash
    from charters.worker.wiring import aws_clients

    settings = _settings()
    set_service_key_hash(aws_clients(settings), settings, present=False)
    console.print("SERVICE_KEY_HASH removed from the SCC Lambda")


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

    settings = _settings()
    if settings.codec_keys is None or settings.codec_auth_token is None:
        raise _fail("set CHARTERS_CODEC_KEYS and CHARTERS_CODEC_AUTH_TOKEN first")
    ui = urlsplit(settings.temporal_ui_url)
    web = codec_app(
        codec_from_key_ring(settings.codec_keys.get_secret_value()),
        settings.codec_auth_token.get_secret_value(),
        settings.codec_cors_origins or [f"{ui.scheme}://{ui.netloc}"],
        trust_ui_origin=settings.codec_trust_ui_origin and settings.profile == "local",
    )
    uvicorn.run(web, host=settings.codec_host, port=settings.codec_port, log_level="warning")


@app.command("codec-keygen")
def codec_keygen(kid: Annotated[str, typer.Argument(help="key id, e.g. 2026-11")]) -> None:
    """Print a new key-ring entry; put it first in CHARTERS_CODEC_KEYS to make it active."""
    from charters.codec import generate_key

    console.print(f"{kid}:{generate_key()}")


@app.command(hidden=True)
def standins() -> None:
    """Local stack only: the calendar and SCC stand-ins."""
    from charters.devstack.standins import serve_standins

    asyncio.run(serve_standins(_settings()))


@app.command()
def dev(
    break_: Annotated[str | None, typer.Option("--break", help="scc-key-hash")] = None,
) -> None:
    """Run the embedded local stack until Ctrl-C (reports the running one instead of a second)."""
    from charters.devstack.stack import DevStack

    settings = _settings()
    running = DevStack.running(settings)
    if running:
        console.print(
            f"A stack already runs (pid {running['pid']}): Web UI "
            f"{settings.temporal_ui_url}, Temporal {settings.temporal_address}"
        )
        return
    stack = DevStack(settings, scc_key_hash=break_ != "scc-key-hash")
    try:
        stack.start()
        console.print(
            f"Stack up. Web UI {settings.temporal_ui_url} · Temporal "
            f"{settings.temporal_address} · logs in {stack.log_dir}. Ctrl-C stops it."
        )
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()


@app.command()
def demo(
    exit_when_done: Annotated[
        bool, typer.Option(help="stop the stack when the booking is done")
    ] = False,
    break_: Annotated[str | None, typer.Option("--break", help="scc-key-hash")] = None,
    file: Annotated[Path, typer.Option(help="booking file")] = Path("examples/seed-charter.yaml"),
) -> None:
    """Book the seed charter on the local stack and click the crew's magic links, as crew would."""
    from charters.starter.demo import run_demo

    code = run_demo(_settings(), console, file, exit_when_done=exit_when_done, broken=break_)
    raise typer.Exit(code)


@app.command()
def bench(
    bookings: Annotated[
        list[int] | None,
        typer.Option(
            help="bookings per run: one value, or one per --concurrency (default 10 50 200)"
        ),
    ] = None,
    concurrency: Annotated[
        list[int] | None,
        typer.Option(help="bookings in flight; repeat for several runs (default 1 10 50)"),
    ] = None,
    latency_ms: Annotated[
        float | None,
        typer.Option(help="delay the fault proxy adds to every external call (default 50)"),
    ] = None,
    baseline_runs: Annotated[int, typer.Option(help="runs of the sequential baseline")] = 5,
    out_dir: Annotated[Path, typer.Option(help="where the JSON and PNG go")] = Path(
        "bench-results"
    ),
    state_base: Annotated[
        Path | None,
        typer.Option(
            help="parent of the stack's temporary state dir (default /dev/shm if writable)"
        ),
    ] = None,
    plot: Annotated[bool, typer.Option(help="write the PNG (needs matplotlib)")] = True,
    keep_state: Annotated[bool, typer.Option(help="keep the bench stack's state dir")] = False,
) -> None:
    """Latency and throughput of bookings on a fresh embedded stack, every external call delayed
    --latency-ms; crew confirmations are signalled as soon as a booking awaits the crew."""
    from charters.devstack.bench import BenchConfig, run_bench

    config = BenchConfig(
        baseline_runs=baseline_runs,
        out_dir=out_dir,
        plot=plot,
        keep_state=keep_state,
        state_base=state_base,
    )
    if latency_ms is not None:
        config.latency_ms = latency_ms
    if concurrency:
        config.concurrency = list(concurrency)
        config.bookings = list(bookings) if bookings else [10 * c for c in concurrency]
    elif bookings:
        config.bookings = list(bookings)
    raise typer.Exit(run_bench(config, console))


@app.command()
def chaos(
    bookings: Annotated[int, typer.Option(help="bookings to run")] = 100,
    kills: Annotated[int, typer.Option(help="times the worker is killed with SIGKILL")] = 5,
    fault_rate: Annotated[
        float, typer.Option(help="share of external calls faulted: 5xx, throttle, reset, slow")
    ] = 0.1,
    seed: Annotated[int, typer.Option(help="seeds the faults and the kill schedule")] = 1,
    concurrency: Annotated[int, typer.Option(help="bookings in flight")] = 20,
    out_dir: Annotated[Path, typer.Option(help="where chaos-<timestamp>.json goes")] = Path(
        "bench-results"
    ),
    keep_state: Annotated[bool, typer.Option(help="keep the chaos stack's state dir")] = False,
    strict: Annotated[
        bool,
        typer.Option(help="count duplicates of the documented SES send/record window too"),
    ] = False,
) -> None:
    """Bookings through injected faults and worker kills on a fresh embedded stack; then every
    effect is counted in the emulated systems. Exits 1 on any duplicate or lost booking (an
    email repeated in the documented SES window is shown apart, counted with --strict)."""
    from charters.devstack.chaos import ChaosConfig, run_chaos_cli

    config = ChaosConfig(
        bookings=bookings,
        kills=kills,
        fault_rate=fault_rate,
        seed=seed,
        concurrency=concurrency,
        out_dir=out_dir,
        keep_state=keep_state,
        strict=strict,
    )
    raise typer.Exit(run_chaos_cli(config, console))
