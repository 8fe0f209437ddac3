"""People's actions from the CLI: each is a Workflow Update (`charters.actions.act`), so the
command prints the workflow's own verdict and exits non-zero when it was refused."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from temporalio.client import Client

from charters import contract
from charters.actions import act
from charters.models import (
    ApproveSccKeyRepair,
    AssignCrew,
    CancelBooking,
    CrewConfirmation,
    CrewMember,
    MoveBrand,
    Reschedule,
    ResolveBlock,
    Verdict,
    describe_validation_error,
)
from charters.settings import Settings
from charters.starter.failures import (
    CliError,
    Exit,
    guarded,
    open_workflow,
    require_worker,
    run_async,
    say_error,
    verdict_exit,
)

console = Console()


def send_action(settings: Settings, workflow_id: str, update: str, arg: Any) -> None:
    """Asks the workflow (open, with a worker to answer) and prints its verdict: stdout when
    recorded, one stderr line and a non-zero exit when refused."""

    async def go(client: Client) -> Verdict:
        await open_workflow(client, workflow_id, running=True)
        await require_worker(client, settings)
        return await act(client, workflow_id, update, arg)

    verdict: Verdict = run_async(settings, go)
    if verdict.recorded:
        console.print(f"{workflow_id}: {verdict.message}", highlight=False, markup=False)
        return
    say_error(f"refused ({verdict.code}): {verdict.message}")
    raise typer.Exit(int(verdict_exit(verdict)))


def parse_local_time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise CliError(
            f"--starts-at {value!r} is not a valid local date and time (YYYY-MM-DDTHH:MM)",
            Exit.USAGE,
        ) from None
    if parsed.tzinfo is not None:
        raise CliError(
            "--starts-at: a local time without offset (the booking's zone applies)", Exit.USAGE
        )
    return parsed


def parse_hours(value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        hours = Decimal(value.strip())
    except InvalidOperation:
        raise CliError(f"--duration-hours {value!r} is not a number of hours", Exit.USAGE) from None
    if not hours.is_finite() or not 0 < hours <= 24:
        raise CliError(f"--duration-hours {value}: must be more than 0 and at most 24", Exit.USAGE)
    return hours


def roster_member(settings: Settings, member_id: str) -> CrewMember:
    """A roster member as a booking's crew member; unknown or retired ids refused in one line."""
    from charters.roster import UnknownMember, unknown_text
    from charters.starter.crew_commands import roster_errors, roster_of

    with roster_errors(settings):
        found = roster_of(settings).get(member_id)
        if found is None:
            raise UnknownMember(unknown_text(member_id))
    if not found.active:
        raise CliError(f"crew member {member_id!r} is retired from the roster", Exit.USAGE)
    return found.as_member()


def register_actions(app: typer.Typer, _settings: Callable[[], Settings]) -> None:
    """Adds the action commands to `charters`; `_settings` reads the configuration."""

    @app.command()
    @guarded
    def confirm(
        workflow_id: str,
        crew_id: str,
        accept: Annotated[bool, typer.Option("--accept/--decline")] = True,
        by_operator: Annotated[
            str | None, typer.Option(help="operator confirming for them")
        ] = None,
    ) -> None:
        """Record a crew member's answer (as they would by magic link, or by an operator)."""
        answer = CrewConfirmation(
            crew_id=crew_id,
            decision="accept" if accept else "decline",
            by=f"operator:{by_operator}" if by_operator else "crew",
        )
        send_action(_settings(), workflow_id, contract.UPDATE_CREW_CONFIRMATION, answer)

    @app.command()
    @guarded
    def assign(
        workflow_id: str,
        replaces: str,
        member_file: Annotated[
            Path, typer.Argument(metavar="MEMBER", help="member YAML file, or a roster id")
        ],
    ) -> None:
        """Replace a crew member (e.g. after a decline) with the member described in a YAML file,
        or with a roster member by id (their roster details as of now)."""
        from charters.starter.book import load_booking_file

        if not member_file.is_file() and re.fullmatch(
            r"[a-z0-9][a-z0-9_-]{0,63}", str(member_file)
        ):
            member = roster_member(_settings(), str(member_file))
            change = AssignCrew(replaces=replaces, member=member)
            send_action(_settings(), workflow_id, contract.UPDATE_ASSIGN_CREW, change)
            return
        if not member_file.is_file():
            raise CliError(f"no crew member file {member_file}", Exit.USAGE)
        try:
            member = CrewMember.model_validate(load_booking_file(member_file))
        except ValidationError as exc:
            message = f"invalid crew member: {describe_validation_error(exc)}"
            raise CliError(message, Exit.USAGE) from None
        except ValueError as exc:
            raise CliError(str(exc), Exit.USAGE) from None
        change = AssignCrew(replaces=replaces, member=member)
        send_action(_settings(), workflow_id, contract.UPDATE_ASSIGN_CREW, change)

    @app.command()
    @guarded
    def cancel(workflow_id: str, reason: str = "cancelled by operator") -> None:
        """Cancel a booking: calendar, SCC, guest page and crew are told, once each."""
        send_action(
            _settings(), workflow_id, contract.UPDATE_CANCEL_BOOKING, CancelBooking(reason=reason)
        )

    @app.command()
    @guarded
    def reschedule(
        workflow_id: str,
        starts_at: Annotated[str, typer.Option(help="new local start, e.g. 2027-05-31T10:00")],
        duration_hours: Annotated[str | None, typer.Option()] = None,
    ) -> None:
        """Move a booking: calendar, SCC, guest page and crew follow."""
        change = Reschedule(
            starts_at=parse_local_time(starts_at), duration_hours=parse_hours(duration_hours)
        )
        send_action(_settings(), workflow_id, contract.UPDATE_RESCHEDULE, change)

    @app.command("approve-repair")
    @guarded
    def approve_repair(workflow_id: str, by: str = "operator") -> None:
        """Let the worker set SERVICE_KEY_HASH on the SCC Lambda from the key in Secrets Manager."""
        send_action(
            _settings(),
            workflow_id,
            contract.UPDATE_APPROVE_SCC_KEY_REPAIR,
            ApproveSccKeyRepair(approved_by=by),
        )

    @app.command("move-brand")
    @guarded
    def move_brand(
        workflow_id: str,
        brand: Annotated[str, typer.Argument(help="a configured brand, e.g. queenofsandiego.com")],
        by: str = "operator",
    ) -> None:
        """Move a booking to another brand: its page goes up on the new site, the old page
        becomes a notice linking to it, both are invalidated and the guest is told once."""
        settings = _settings()
        try:
            settings.brand_book().get(brand)
        except ValueError as exc:
            raise CliError(str(exc), Exit.USAGE) from None
        send_action(
            settings, workflow_id, contract.UPDATE_MOVE_BRAND, MoveBrand(brand=brand, by=by)
        )

    @app.command()
    @guarded
    def retry(
        workflow_id: str,
        step: Annotated[str | None, typer.Option(help="the blocked step (default: any)")] = None,
        skip: Annotated[bool, typer.Option(help="skip the step instead, where safe")] = False,
        by: str = "operator",
    ) -> None:
        """Resolve a blocked step once its cause is fixed: try it again now, or skip it."""
        resolve = ResolveBlock(action="skip" if skip else "retry", step=step, by=by)
        send_action(_settings(), workflow_id, contract.UPDATE_RESOLVE_BLOCK, resolve)
