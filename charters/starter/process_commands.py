"""The long-running processes of the one binary: the worker, the crew confirmation endpoint and
the codec server (and the codec's key generator beside it)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Annotated

import typer
import uvicorn
from rich.console import Console

from charters.settings import Settings
from charters.starter.failures import Exit, exit_now, say_error


def register_processes(app: typer.Typer, settings: Callable[[], Settings]) -> None:
    err = Console(stderr=True)

    def refuse(message: str) -> typer.Exit:
        say_error(message)
        return typer.Exit(Exit.USAGE)

    @app.command()
    def worker() -> None:
        """Run a worker (stateless; run as many as you like)."""
        from charters.observability import configure_logging
        from charters.worker.main import run_worker

        current = settings()
        configure_logging(json=current.log_json)
        logging.getLogger("charters.worker").info("worker: %s", current.connection_summary())
        code = asyncio.run(run_worker(current))
        # The worker has drained: exit without interpreter finalization, where an activity
        # thread that is still stuck, or the SDK core's own threads, can abort the process.
        exit_now(code)

    @app.command("confirm-server")
    def confirm_server() -> None:
        """Serve the crew confirmation endpoint (magic links)."""
        from charters.activities.secrets import SecretReader
        from charters.temporal_client import connect
        from charters.web.confirm_app import confirm_app
        from charters.web.serving import serve, uvicorn_config
        from charters.worker.wiring import aws_client

        current = settings()
        err.print(f"confirm-server: {current.connection_summary()}", highlight=False)
        secrets = SecretReader(aws_client(current, "secretsmanager"))
        web = confirm_app(
            lambda: connect(current),
            secrets,
            current.secret_magic_link_key,
            per_token_per_minute=current.confirm_limit_per_token_per_minute,
            per_client_per_minute=current.confirm_limit_per_client_per_minute,
        )
        serve(
            uvicorn_config(
                web, current.confirm_host, current.confirm_port, current.confirm_forwarded_allow_ips
            )
        )

    @app.command("codec-server")
    def codec_server() -> None:
        """Serve the codec server: decrypts payloads for the Web UI and `temporal
        --codec-endpoint`."""
        from urllib.parse import urlsplit

        from charters.codec import codec_from_key_ring
        from charters.web.codec_server import codec_app
        from charters.web.oidc import oidc_verifier

        current = settings()
        err.print(f"codec-server: {current.connection_summary()}", highlight=False)
        if current.codec_keys is None or current.codec_auth_token is None:
            raise refuse("set CHARTERS_CODEC_KEYS and CHARTERS_CODEC_AUTH_TOKEN first")
        try:
            verifier = oidc_verifier(current)
        except ValueError as exc:
            raise refuse(str(exc)) from None
        if verifier is not None and not verifier.allowed:
            raise refuse(
                "set CHARTERS_CODEC_ALLOWED_PRINCIPALS to the users or groups (values of the "
                f"{verifier.claim!r} claim) who may decode: a valid token alone is not enough"
            )
        ui = urlsplit(current.temporal_ui_url)
        web = codec_app(
            codec_from_key_ring(current.codec_keys.get_secret_value()),
            current.codec_auth_token.get_secret_value(),
            current.codec_cors_origins or [f"{ui.scheme}://{ui.netloc}"],
            trust_ui_origin=current.codec_trust_ui_origin and current.profile == "local",
            verifier=verifier,
        )
        uvicorn.run(web, host=current.codec_host, port=current.codec_port, log_level="warning")

    @app.command("codec-keygen")
    def codec_keygen(kid: Annotated[str, typer.Argument(help="key id, e.g. 2026-11")]) -> None:
        """Print a new key-ring entry; put it first in CHARTERS_CODEC_KEYS to make it active."""
        from charters.codec import generate_key

        print(f"{kid}:{generate_key()}")
