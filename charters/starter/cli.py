"""`charters`: one binary for the operator commands, the worker, the web endpoints and the stack.
Every command fails with one line on stderr and an exit code from `failures.Exit`."""

from __future__ import annotations

import faulthandler
import json
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

try:  # typer >= 0.17 vendors click
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover
    from click import UsageError  # type: ignore[assignment]
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError
from pydantic_settings import SettingsError
from rich.console import Console
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import WorkflowAlreadyStartedError

from charters import contract
from charters.actions import SETTLED_STAGES, ask, settled
from charters.models import BookingResult, BookingStatus, describe_validation_error
from charters.settings import Settings
from charters.starter import book as booking_start
from charters.starter.act_commands import register_actions
from charters.starter.crew_commands import register_crew, roster_unreachable
from charters.starter.failures import (
    DEBUG,
    CliError,
    Exit,
    exit_now,
    guarded,
    open_workflow,
    require_worker,
    run_async,
    say_error,
)
from charters.starter.ops_commands import register_ops
from charters.starter.process_commands import register_processes
from charters.starter.views import (
    list_rows,
    list_table,
    pending_retries,
    settle_closed,
    show_result,
    show_status,
    status_json,
)

app = typer.Typer(
    help="Temporal Charters: durable charter bookings.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
ops = typer.Typer(help="Operator fixes applied from outside the workflow.", no_args_is_help=True)
app.add_typer(ops, name="ops")
console = Console()
err = Console(stderr=True)


@app.callback()
def _options(
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks of errors")] = False,
) -> None:
    DEBUG["on"] = debug


def _settings() -> Settings:
    """Settings from the environment; locally, plus the running stack's (never exported). A
    setting that does not parse is one line, also for the long-running commands."""
    try:
        return Settings().with_local_stack()
    except SettingsError as exc:
        raise _fail(f"{exc}: list settings are JSON, e.g. '[\"ops@example.com\"]'") from None
    except ValidationError as exc:
        raise _fail(describe_validation_error(exc)) from None


def _fail(message: str, code: int = 2) -> typer.Exit:
    say_error(message)
    return typer.Exit(code)


def main() -> None:
    """The `charters` entry point: click's usage errors become one line too. It ends with
    `os._exit` after flushing: interpreter finalization with the Temporal SDK core's threads
    still alive (a client's runtime, uvicorn's) is where the rare segfault at exit came from;
    faulthandler prints the Python stack should a native crash happen anyway."""
    faulthandler.enable()
    try:
        code = app(prog_name="charters", standalone_mode=False)
    except UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # `charters` alone: the help
            print(exc.format_message(), file=sys.stderr)
        else:
            hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
            say_error(f"{exc.format_message()}{hint}")
        code = Exit.USAGE
    except typer.Abort:
        say_error("interrupted")
        code = Exit.INTERRUPTED
    exit_now(code if isinstance(code, int) else 0)


# ---- bookings ------------------------------------------------------------------------------


@app.command()
@guarded
def book(
    file: Annotated[Path, typer.Argument(help="booking YAML/JSON")],
    wait: Annotated[bool, typer.Option(help="wait for the result")] = False,
) -> None:
    """Validate a booking file and start its workflow (refused if that booking exists)."""
    settings = _settings()
    if not file.is_file():
        raise CliError(f"no booking file {file}", Exit.USAGE)
    raw: dict[str, Any] | None = None
    try:
        raw = booking_start.load_booking_file(file)
        booking = booking_start.validate_with_roster(settings, raw)
    except ValidationError as exc:
        message = f"invalid booking {file}: {describe_validation_error(exc)}"
        raise CliError(message, Exit.USAGE) from None
    except ValueError as exc:  # RosterError and BrandError included
        raise CliError(f"invalid booking {file}: {exc}", Exit.USAGE) from None
    except (ClientError, BotoCoreError) as exc:
        raise CliError(roster_unreachable(settings, exc), Exit.FAILED) from None
    if not booking_start.names_roster_members(raw):
        raw = None

    booking = booking_start.with_page_slug(booking)

    async def go(client: Client) -> None:
        await require_worker(client, settings)
        try:
            handle = await booking_start.start_booking(client, settings, booking, raw=raw)
        except WorkflowAlreadyStartedError:
            wf = contract.workflow_id_for(booking.booking_ref)
            raise CliError(
                f"booking {booking.booking_ref} already exists as workflow {wf}: "
                f"see `charters status {wf}`",
                Exit.EXISTS,
            ) from None
        console.print(f"Started [bold]{handle.id}[/]")
        console.print(f"Web UI: {settings.temporal_ui_link(handle.id)}")
        console.print(f"Guest page: {settings.guest_page_url(booking.page_slug, booking.brand)}")
        if wait:  # until the crew have confirmed: the workflow itself lives on to the trip
            show_result(console, await settled(handle, timeout=24 * 3600))

    run_async(settings, go)


QUERY_TIMEOUT = timedelta(seconds=15)


async def read_status(
    client: Client, settings: Settings, workflow_id: str
) -> tuple[BookingStatus, list[Any], bool]:
    """The workflow's own status plus what only the server knows: retries, open or closed."""
    described = await open_workflow(client, workflow_id, running=False)
    running = described.status == WorkflowExecutionStatus.RUNNING
    await require_worker(client, settings)
    if running:
        await refuse_if_stuck(client, workflow_id)
    current = await ask(
        client.get_workflow_handle(workflow_id), contract.QUERY_STATUS, BookingStatus, QUERY_TIMEOUT
    )
    retries = (
        await pending_retries(described.raw_description, client.data_converter) if running else []
    )
    failure = None
    if described.status in FAILED_CLOSES:
        failure = await close_failure(client, workflow_id, described.status)
    return settle_closed(current, running, failure), retries, running


async def refuse_if_stuck(client: Client, workflow_id: str) -> None:
    """A booking whose workflow task fails on a history the code does not replay answers no
    query (it would wait until its timeout): say it is stuck, and how to repair it."""
    from charters.starter.repair import stuck_break, stuck_line

    found = await stuck_break(client, workflow_id)
    if found is not None:
        raise CliError(stuck_line(workflow_id, found), Exit.FAILED)


FAILED_CLOSES = (
    WorkflowExecutionStatus.FAILED,
    WorkflowExecutionStatus.TERMINATED,
    WorkflowExecutionStatus.TIMED_OUT,
)


async def close_failure(client: Client, workflow_id: str, how: WorkflowExecutionStatus) -> str:
    """One line on how a booking's workflow ended badly, from its closing event."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    last = history.events[-1] if history.events else None
    if last is not None and last.HasField("workflow_execution_failed_event_attributes"):
        message = last.workflow_execution_failed_event_attributes.failure.message
        return f"the workflow failed: {message.splitlines()[0] if message else 'no message'}"
    if last is not None and last.HasField("workflow_execution_terminated_event_attributes"):
        reason = last.workflow_execution_terminated_event_attributes.reason
        return f"the workflow was terminated{f': {reason}' if reason else ''}"
    return f"the workflow ended {how.name.lower().replace('_', ' ')}"


@app.command()
@guarded
def status(
    workflow_id: str,
    watch: Annotated[
        bool, typer.Option(help="refresh every 2 s until it settles (confirmed, cancelled, over)")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object, for scripts")] = False,
) -> None:
    """Where a booking stands: each step, retries with their last error, crew answers, and
    what blocks it with the command that resolves it."""
    settings = _settings()
    link = settings.temporal_ui_link(workflow_id)
    while True:
        current, retries, running = run_async(
            settings, lambda c: read_status(c, settings, workflow_id)
        )
        if as_json:
            print(json.dumps(status_json(current, retries, link), indent=1))
        else:
            if watch:
                console.clear()
            show_status(console, current, link, retries)
        if current.outcome == "failed":
            raise typer.Exit(Exit.FAILED)
        if as_json or not watch or not running or current.stage in SETTLED_STAGES:
            return
        time.sleep(2)


@app.command("list")
@guarded
def list_bookings(
    stage: Annotated[str | None, typer.Option(help="e.g. awaiting-crew, confirmed")] = None,
    blocked_on: Annotated[str | None, typer.Option(help="e.g. scc-service-key-hash")] = None,
    date: Annotated[str | None, typer.Option(help="charter date YYYY-MM-DD (UTC day)")] = None,
    brand: Annotated[str | None, typer.Option(help="a configured brand, e.g. sailjada.com")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="a JSON array, for scripts")] = False,
) -> None:
    """Bookings from the visibility store, filtered by stage, what blocks them, date or brand."""
    from charters.starter.listing import visibility_query

    settings = _settings()
    try:
        if brand is not None:
            settings.brand_book().get(brand)
        query = visibility_query(stage=stage, blocked_on=blocked_on, date=date, brand=brand)
    except ValueError as exc:
        raise CliError(str(exc), Exit.USAGE) from None

    async def go(client: Client) -> list[Any]:
        return [wf async for wf in client.list_workflows(query, limit=limit)]

    rows = list_rows(run_async(settings, go))
    if as_json:
        print(json.dumps(rows, indent=1))
        return
    console.print(list_table(rows))
    console.print(f"[dim]{len(rows)} booking(s) · query: {query}[/]", highlight=False)


@app.command("brands")
@guarded
def brands_command(
    as_json: Annotated[
        bool, typer.Option("--json", help="the brands as CHARTERS_BRANDS JSON")
    ] = False,
) -> None:
    """The configured brands: site, scheme, bucket, distribution, sender, and the CSP hash a
    brand with its own colours needs in its ContentSecurityPolicy."""
    from rich.table import Table

    try:
        book_ = _settings().brand_book()
    except ValueError as exc:
        raise CliError(str(exc), Exit.USAGE) from None
    if as_json:
        print(json.dumps([b.model_dump(mode="json") for b in book_.brands.values()], indent=1))
        return
    table = Table("brand", "site", "scheme", "bucket / prefix", "distribution", "sender", "style")
    for brand in book_.brands.values():
        table.add_row(
            brand.name + (" (default)" if brand.name == book_.default else ""),
            brand.page_url("{slug}"),
            brand.path_scheme,
            f"{brand.bucket}/{brand.key_prefix}",
            brand.distribution_id,
            brand.sender,
            brand.look.style_hash() or "default",
        )
    console.print(table)


@app.command()
@guarded
def result(workflow_id: str) -> None:
    """What a booking has made: its result once settled (crew confirmed, cancelled or over)."""
    settings = _settings()

    async def go(client: Client) -> BookingResult:
        described = await open_workflow(client, workflow_id, running=False)
        if described.status == WorkflowExecutionStatus.RUNNING:
            await require_worker(client, settings)
        handle = client.get_workflow_handle(workflow_id, result_type=BookingResult)
        try:
            return await settled(handle, timeout=24 * 3600)
        except WorkflowFailureError as exc:
            raise CliError(f"{workflow_id} failed: {exc.cause}", Exit.FAILED) from None

    show_result(console, run_async(settings, go))


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


def _register_plugins() -> None:
    """Commands that live outside the product (the local stack, demo, bench, chaos) register
    themselves through the `charters.cli` entry point group: the product never imports them."""
    from importlib.metadata import entry_points

    for ep in entry_points(group="charters.cli"):
        ep.load()(app, ops)


register_actions(app, _settings)
register_crew(app, _settings)
register_ops(ops, _settings)
register_processes(app, _settings)
_register_plugins()
