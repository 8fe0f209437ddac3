"""Several proxies in one process, and the command line (`python -m charters_dev.faultproxy`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import Callable
from urllib.parse import urlsplit

from charters_dev.faultproxy.proxy import FaultProxy
from charters_dev.faultproxy.spec import ADMIN_PATH, FaultSpec, ProxyTarget

# ---- several at once, and the command line ------------------------------------------------


async def serve_proxies(
    targets: list[ProxyTarget],
    *,
    host: str = "127.0.0.1",
    on_ready: Callable[[list[FaultProxy]], None] | None = None,
) -> None:
    """Runs one proxy per target in this event loop until cancelled."""
    proxies = [FaultProxy.from_target(t, host=host) for t in targets]
    try:
        for proxy in proxies:
            await proxy.start()
        if on_ready is not None:
            on_ready(proxies)
        await asyncio.gather(*(proxy.serve() for proxy in proxies))
    finally:
        for proxy in proxies:
            await proxy.aclose()


def parse_args(argv: list[str] | None = None) -> tuple[list[ProxyTarget], str]:
    parser = argparse.ArgumentParser(
        prog="python -m charters_dev.faultproxy",
        description="Latency/fault reverse proxy for the local stack. "
        f"Admin: GET/PUT/DELETE {ADMIN_PATH} on each proxy port.",
    )
    parser.add_argument("--listen", type=int, help="port for a single proxy (0: any free port)")
    parser.add_argument("--upstream", help="upstream base URL for a single proxy")
    parser.add_argument("--aws", action="store_true", help="the upstream is AWS (moto)")
    parser.add_argument("--spec", default="", help="compact fault spec, e.g. delay=50,error=0.1")
    parser.add_argument("--name", help="name of the single proxy (default: upstream host:port)")
    parser.add_argument("--targets", help="JSON list of {name, listen_port, upstream, aws, spec}")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        if args.targets:
            if args.listen is not None or args.upstream:
                parser.error("use either --targets or --listen/--upstream")
            raw = json.loads(args.targets)
            if not isinstance(raw, list):
                parser.error("--targets must be a JSON list")
            targets = [ProxyTarget.model_validate(t) for t in raw]
        else:
            if args.listen is None or not args.upstream:
                parser.error("--listen and --upstream are required (or --targets)")
            targets = [
                ProxyTarget(
                    name=args.name or urlsplit(args.upstream).netloc,
                    listen_port=args.listen,
                    upstream=args.upstream,
                    aws=args.aws,
                    spec=FaultSpec.parse(args.spec),
                )
            ]
    except ValueError as e:  # includes pydantic's ValidationError and JSON errors
        parser.error(str(e))
    return targets, args.host


def _announce(proxies: list[FaultProxy]) -> None:
    # One line per proxy on stdout, for launchers that asked for port 0.
    for p in proxies:
        print(f"faultproxy {p.name} listening on {p.host}:{p.port} -> {p.upstream_url}", flush=True)


async def _run_until_signalled(targets: list[ProxyTarget], host: str) -> None:
    task = asyncio.ensure_future(serve_proxies(targets, host=host, on_ready=_announce))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task


def main(argv: list[str] | None = None) -> None:
    targets, host = parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run_until_signalled(targets, host))
