"""The worker's tiny HTTP server, in the worker's own event loop (no extra thread or process).

`GET /healthz`: 200 `{"status": "ok", "task_queue": ...}` while the worker polls, 503
`{"status": "starting"}` before and `{"status": "shutting-down"}` once shutdown began.
`GET /metrics`: the Prometheus text of the Temporal runtime (SDK worker metrics and the
product's custom workflow/activity metrics), fetched from the runtime's loopback exporter.

Plain `asyncio.start_server` and HTTP/1.0-style replies (one request per connection): probes and
Prometheus scrapes need nothing more, and uvicorn would install its own signal handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Literal

import httpx

log = logging.getLogger("charters.worker.health")

State = Literal["starting", "ok", "shutting-down"]

_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    503: "Service Unavailable",
}
PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
READ_TIMEOUT = 5.0


class HealthServer:
    def __init__(
        self,
        task_queue: str,
        metrics_url: str | None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.task_queue = task_queue
        self.metrics_url = metrics_url
        self.host = host
        self.port = port
        self.state: State = "starting"
        self._server: asyncio.Server | None = None
        self._http = httpx.AsyncClient(timeout=5.0)
        # httpx logs each request at INFO: not one line per scrape.
        logging.getLogger("httpx").addFilter(self._quiet_scrapes)

    def _quiet_scrapes(self, record: logging.LogRecord) -> bool:
        return not (self.metrics_url and self.metrics_url in record.getMessage())

    async def start(self) -> int:
        """Listens; returns the port (useful with port 0)."""
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None
        await self._http.aclose()
        logging.getLogger("httpx").removeFilter(self._quiet_scrapes)

    # ---- HTTP --------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        method = "GET"
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
            method, _, rest = head.decode("latin-1").partition(" ")
            path = rest.partition(" ")[0].partition("?")[0]
            status, ctype, body = await self._respond(method, path)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            status, ctype, body = 400, "text/plain", b"bad request\n"
        except Exception:  # noqa: BLE001 - never let a probe take the worker down
            log.exception("health request failed")
            status, ctype, body = 503, "text/plain", b"error\n"
        try:
            writer.write(
                (
                    f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\n"
                    f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                    "Cache-Control: no-store\r\nConnection: close\r\n\r\n"
                ).encode("latin-1")
                + (b"" if method == "HEAD" else body)
            )
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _respond(self, method: str, path: str) -> tuple[int, str, bytes]:
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", b"method not allowed\n"
        if path == "/healthz":
            doc: dict[str, str] = {"status": self.state}
            if self.state == "ok":
                doc["task_queue"] = self.task_queue
            return (200 if self.state == "ok" else 503), "application/json", _json(doc)
        if path == "/metrics":
            return await self._metrics()
        return 404, "text/plain", b"not found\n"

    async def _metrics(self) -> tuple[int, str, bytes]:
        own = (
            "# HELP charters_worker_up 1 while the worker polls, 0 before and while it stops.\n"
            "# TYPE charters_worker_up gauge\n"
            f'charters_worker_up{{task_queue="{_label(self.task_queue)}"}} '
            f"{1 if self.state == 'ok' else 0}\n"
        ).encode()
        if self.metrics_url is None:
            return 200, PROMETHEUS_TYPE, own
        try:
            sdk = await self._http.get(self.metrics_url)
            sdk.raise_for_status()
        except httpx.HTTPError as exc:
            log.warning("Temporal metrics exporter unreachable: %s", exc)
            return 503, "text/plain", b"metrics exporter unreachable\n"
        text = sdk.content
        if text and not text.endswith(b"\n"):
            text += b"\n"
        return 200, PROMETHEUS_TYPE, text + own


def _json(doc: dict[str, str]) -> bytes:
    return (json.dumps(doc) + "\n").encode()


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
