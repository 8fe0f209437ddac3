"""`charters crew`: the crew roster in DynamoDB. Bad input is refused here, one line naming the
field, so a typo in an address or phone is found when it is typed, not when SES or SNS refuse
it weeks later. Bookings that name a member by id copy these details when they are validated."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.table import Table

from charters.roster import (
    CrewRoster,
    MemberExists,
    RosterError,
    RosterMember,
    UnknownMember,
    parse_member,
    read_import_file,
    unknown_text,
)
from charters.settings import Settings
from charters.starter.failures import CliError, Exit, guarded

console = Console()


def roster_unreachable(settings: Settings, exc: BaseException) -> str:
    """One line for a DynamoDB failure behind a roster command."""
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", "")).removesuffix("Exception")
        if code == "ResourceNotFound":
            return (
                f"no crew roster table {settings.crew_table!r}: set CHARTERS_CREW_TABLE (the "
                "template creates the table)"
            )
        return f"the crew roster ({settings.crew_table}) answered {code}: {exc}"
    return f"the crew roster ({settings.crew_table}) is unreachable: {type(exc).__name__}"


@contextmanager
def roster_errors(settings: Settings) -> Iterator[None]:
    """Roster refusals and AWS failures as the CLI's one line and exit code."""
    try:
        yield
    except MemberExists as exc:
        raise CliError(str(exc), Exit.EXISTS) from None
    except UnknownMember as exc:
        raise CliError(str(exc), Exit.UNKNOWN_WORKFLOW) from None
    except RosterError as exc:
        raise CliError(str(exc), Exit.USAGE) from None
    except (ClientError, BotoCoreError) as exc:
        raise CliError(roster_unreachable(settings, exc), Exit.FAILED) from None


def roster_of(settings: Settings) -> CrewRoster:
    from charters.worker.wiring import aws_client

    return CrewRoster(aws_client(settings, "dynamodb"), settings.crew_table)


def _member_json(member: RosterMember) -> dict[str, Any]:
    return member.model_dump(mode="json")


def _table(members: list[RosterMember]) -> Table:
    table = Table("id", "name", "email", "phone", "rate", "roles", "channels", "active")
    for m in members:
        table.add_row(
            m.id,
            m.name,
            m.email,
            m.phone or "",
            f"${m.hourly_rate:,.2f}/h",
            ", ".join(m.roles),
            ", ".join(m.channels),
            "yes" if m.active else "retired",
        )
    return table


def _channels(sms: bool | None, current: list[str] | None = None) -> list[str] | None:
    if sms is None:
        return current
    return ["email", "sms"] if sms else ["email"]


def register_crew(app: typer.Typer, _settings: Callable[[], Settings]) -> None:
    """Adds `charters crew ...`; `_settings` reads the configuration."""
    crew = typer.Typer(help="The crew roster: who can be booked by id.", no_args_is_help=True)
    app.add_typer(crew, name="crew")

    @crew.command("add")
    @guarded
    def add(
        member_id: Annotated[str, typer.Argument(metavar="ID", help="e.g. crew-id-1")],
        name: Annotated[str, typer.Option(help="full name")],
        email: Annotated[str, typer.Option(help="address for invitations")],
        rate: Annotated[str, typer.Option(help="hourly rate in USD, e.g. 25.00")],
        role: Annotated[
            list[str] | None, typer.Option(help="captain or crew (repeat for both)")
        ] = None,
        phone: Annotated[str | None, typer.Option(help="E.164, e.g. +16195550100")] = None,
        sms: Annotated[bool, typer.Option(help="opted in to SMS (needs --phone)")] = False,
    ) -> None:
        """Add a crew member; refused if the id is taken or any field is not valid."""
        settings = _settings()
        with roster_errors(settings):
            member = parse_member(
                {
                    "id": member_id,
                    "name": name,
                    "email": email,
                    "hourly_rate": rate,
                    "roles": role or ["crew"],
                    "channels": _channels(sms),
                    **({"phone": phone} if phone is not None else {}),
                }
            )
            roster_of(settings).add(member)
        console.print(f"added {member.id} ({member.name})", highlight=False, markup=False)

    @crew.command("list")
    @guarded
    def list_members(
        all_: Annotated[bool, typer.Option("--all", help="retired members too")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="a JSON array")] = False,
    ) -> None:
        """The roster, active members only unless --all."""
        settings = _settings()
        with roster_errors(settings):
            members = sorted(roster_of(settings).members(include_retired=all_), key=lambda m: m.id)
        if as_json:
            print(json.dumps([_member_json(m) for m in members], indent=1))
            return
        console.print(_table(members))

    @crew.command("show")
    @guarded
    def show(
        member_id: Annotated[str, typer.Argument(metavar="ID")],
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """One member's roster entry."""
        settings = _settings()
        with roster_errors(settings):
            member = roster_of(settings).get(member_id)
            if member is None:
                raise UnknownMember(unknown_text(member_id))
        if as_json:
            print(json.dumps(_member_json(member), indent=1))
            return
        console.print(_table([member]))

    @crew.command("update")
    @guarded
    def update(
        member_id: Annotated[str, typer.Argument(metavar="ID")],
        name: Annotated[str | None, typer.Option()] = None,
        email: Annotated[str | None, typer.Option()] = None,
        rate: Annotated[str | None, typer.Option()] = None,
        role: Annotated[list[str] | None, typer.Option(help="replaces the roles")] = None,
        phone: Annotated[str | None, typer.Option(help="'' removes it")] = None,
        sms: Annotated[bool | None, typer.Option("--sms/--no-sms")] = None,
        active: Annotated[bool | None, typer.Option("--active/--retired")] = None,
    ) -> None:
        """Change a member's details; bookings already validated keep their snapshot."""
        settings = _settings()
        with roster_errors(settings):
            roster = roster_of(settings)
            current = roster.get(member_id)
            if current is None:
                raise UnknownMember(unknown_text(member_id))
            data = _member_json(current)
            changes: dict[str, Any] = {
                "name": name,
                "email": email,
                "hourly_rate": rate,
                "roles": role or None,
                "channels": _channels(sms, None),
                "active": active,
            }
            data.update({k: v for k, v in changes.items() if v is not None})
            if phone is not None:
                data["phone"] = phone or None
            if data.get("phone") is None and sms is None and "sms" in data["channels"]:
                data["channels"] = ["email"]  # no phone, no texts
            member = parse_member(data)
            roster.replace(member)
        console.print(f"updated {member.id}", highlight=False, markup=False)

    @crew.command("retire")
    @guarded
    def retire(member_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
        """Take a member off the roster for new bookings (running bookings keep them)."""
        settings = _settings()
        with roster_errors(settings):
            roster = roster_of(settings)
            current = roster.get(member_id)
            if current is None:
                raise UnknownMember(unknown_text(member_id))
            roster.replace(current.model_copy(update={"active": False}))
        console.print(f"retired {member_id}", highlight=False, markup=False)

    @crew.command("import")
    @guarded
    def import_(
        file: Annotated[Path, typer.Argument(help="YAML, JSON or CSV roster entries")],
    ) -> None:
        """Add or replace members from a file; nothing is written unless every entry is valid."""
        settings = _settings()
        if not file.is_file():
            raise CliError(f"no roster file {file}", Exit.USAGE)
        with roster_errors(settings):
            members = read_import_file(file)
            roster = roster_of(settings)
            added = sum(1 for m in members if roster.put(m))
        console.print(
            f"imported {len(members)} member(s) from {file.name}: {added} added, "
            f"{len(members) - added} replaced",
            highlight=False,
            markup=False,
        )
