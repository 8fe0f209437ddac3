"""Commands under `charters ops`: checks an operator runs before and after a deploy, and fixes
applied from outside a booking.
Each failure is one line on stderr and a non-zero exit code, never a traceback."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from charters.settings import Settings
from charters.starter.failures import Exit, guarded, run_async, say_error

ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class UnsuppressError(Exception):
    """One line for the operator: what SES said and what to do."""


def unsuppress(sesv2: Any, address: str) -> str:
    """Removes `address` from the account-level suppression list (SES v2
    DeleteSuppressedDestination), after the address was fixed; the answer is one line."""
    from botocore.exceptions import BotoCoreError, ClientError

    if not ADDRESS.match(address):
        raise UnsuppressError(f"{address!r} is not an e-mail address")
    try:
        found = sesv2.get_suppressed_destination(EmailAddress=address)["SuppressedDestination"]
        sesv2.delete_suppressed_destination(EmailAddress=address)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", "")).removesuffix("Exception")
        if code == "NotFound":
            return f"{address} is not on the SES suppression list: nothing to do"
        if code == "AccessDenied":
            raise UnsuppressError(
                f"SES refused ({code}): your AWS identity needs ses:GetSuppressedDestination and "
                "ses:DeleteSuppressedDestination"
            ) from None
        message = " ".join(str(exc.response.get("Error", {}).get("Message", "")).split())
        raise UnsuppressError(f"SES answered {code or 'an error'}: {message[:200]}") from None
    except BotoCoreError as exc:
        raise UnsuppressError(f"SES call failed: {exc}") from None
    reason = found.get("Reason", "?")
    return (
        f"{address} removed from the SES suppression list (it was suppressed for {reason}); "
        "resume the blocked step with `charters retry`"
    )


def register_ops(ops: typer.Typer, settings: Callable[[], Settings]) -> None:
    @ops.command("preflight")
    def preflight(
        compose_files: Annotated[
            list[Path] | None,
            typer.Argument(help="the compose files, as given to `docker compose -f`"),
        ] = None,
    ) -> None:
        """Check that every secret file compose mounts is readable by the user its service runs
        as (and by nobody else); names each file that is not, with the fix."""
        from charters.starter.preflight import check

        files = compose_files or [Path("docker-compose.yml")]
        for file in files:
            if not file.is_file():
                say_error(f"{file}: no such file (give the path of docker-compose.yml)")
                raise typer.Exit(Exit.USAGE)
        try:
            problems = check(files)
        except (ValueError, OSError, KeyError) as exc:
            say_error(f"{' '.join(map(str, files))}: {exc}")
            raise typer.Exit(Exit.USAGE) from None
        for line in problems:
            say_error(line)
        if problems:
            raise typer.Exit(Exit.FAILED)
        shown = " ".join(map(str, files))
        typer.echo(f"preflight: every secret file of {shown} is readable by its readers")

    @ops.command("unsuppress")
    def unsuppress_command(
        address: Annotated[str, typer.Argument(help="the corrected recipient address")],
    ) -> None:
        """Take an address off the account's SES suppression list once it is fixed (a bounce
        put it there; SES drops every send to it silently until then)."""
        from charters.worker.wiring import aws_client

        try:
            line = unsuppress(aws_client(settings(), "sesv2"), address)
        except UnsuppressError as exc:
            say_error(str(exc))
            raise typer.Exit(Exit.FAILED) from None
        typer.echo(line)

    @ops.command("publish-404")
    def publish_404() -> None:
        """Put the branded "page not found" page where the distribution's custom error response
        reads it (guest-pages/not-found.html); run once per deployment of new templates."""
        from botocore.exceptions import BotoCoreError, ClientError

        from charters.activities.guest_page import publish_not_found_page
        from charters.worker.wiring import aws_client

        s = settings()
        try:
            key = publish_not_found_page(aws_client(s, "s3"), s.guest_bucket, s.guest_key_prefix)
        except (ClientError, BotoCoreError) as exc:
            say_error(f"could not write s3://{s.guest_bucket}/{s.guest_key_prefix}: {exc}")
            raise typer.Exit(Exit.FAILED) from None
        typer.echo(f"published s3://{s.guest_bucket}/{key}")

    @ops.command("smoke")
    def smoke(
        guest_site: Annotated[
            str | None,
            typer.Option(help="base URL to load guest pages from (default: their own URL)"),
        ] = None,
        timeout: Annotated[float, typer.Option(help="seconds each check may wait")] = 180.0,
    ) -> None:
        """Book a test charter (SES mailbox simulator addresses) through the deployment, load its
        guest page, follow a confirmation link, see a simulated bounce block a seat, cancel;
        one PASS/FAIL line per check."""
        from charters.activities.secrets import SecretReader
        from charters.starter.failures import CliError
        from charters.starter.smoke import SmokeRun
        from charters.worker.wiring import aws_client

        s = settings()
        reader = SecretReader(aws_client(s, "secretsmanager"))

        def magic_key() -> bytes:
            return reader.get(s.secret_magic_link_key).encode()

        async def go(client: Any) -> list[Any]:
            run = SmokeRun(client, s, magic_key, guest_site=guest_site, timeout=timeout)
            return await run.run()

        try:
            checks = run_async(s, go)
        except CliError as exc:
            say_error(exc.message)
            raise typer.Exit(exc.code) from None
        for check in checks:
            typer.echo(check.line())
        if not all(c.ok for c in checks):
            raise typer.Exit(Exit.FAILED)

    @ops.command("repair")
    @guarded
    def repair_command(
        workflow_id: Annotated[str, typer.Argument(help="the booking's workflow id")],
    ) -> None:
        """Reset a booking whose history this code no longer replays (`status` says it is stuck:
        its workflow task fails on every worker) to the last task it replays; crew answers,
        actions and cancels received since are applied again."""
        from charters.starter.repair import repair

        typer.echo(run_async(settings(), lambda client: repair(client, workflow_id)))
