"""Deployment commands under `charters ops`: checks an operator runs before and after a deploy.
Each failure is one line on stderr and a non-zero exit code, never a traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from charters.settings import Settings
from charters.starter.failures import Exit, say_error


def register_ops(ops: typer.Typer, settings: Callable[[], Settings]) -> None:
    @ops.command("preflight")
    def preflight(
        compose_file: Annotated[Path, typer.Argument(help="the production compose file")] = Path(
            "docker-compose.yml"
        ),
    ) -> None:
        """Check that every secret file compose mounts is readable by the user its service runs
        as (and by nobody else); names each file that is not, with the fix."""
        from charters.starter.preflight import check

        if not compose_file.is_file():
            say_error(f"{compose_file}: no such file (give the path of docker-compose.yml)")
            raise typer.Exit(Exit.USAGE)
        try:
            problems = check(compose_file)
        except (ValueError, OSError) as exc:
            say_error(f"{compose_file}: {exc}")
            raise typer.Exit(Exit.USAGE) from None
        for line in problems:
            say_error(line)
        if problems:
            raise typer.Exit(Exit.FAILED)
        typer.echo(f"preflight: every secret file of {compose_file} is readable by its readers")
