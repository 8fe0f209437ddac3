"""The proxy's HTTP/1.1 plumbing (asyncio streams + h11): the keep-alive pool of upstream
connections and the helpers that read, write and abort a connection."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import SplitResult, urlsplit

import h11

MAX_BODY = 64 * 1024 * 1024
READ_CHUNK = 64 * 1024

# Headers that describe one hop, never forwarded in either direction (RFC 9110 §7.6.1), plus the
# ones the proxy computes itself.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
        "content-length",
    }
)


HOP_BY_HOP_B = frozenset(h.encode() for h in HOP_BY_HOP)


# ---- the proxy ------------------------------------------------------------------------------


class ResetConnection(Exception):
    """Abort the client connection with an RST."""


class Answer:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


def upstream_parts(url: str) -> SplitResult:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"upstream must be an http(s) URL, not {url!r}")
    return parts


class UpstreamError(Exception):
    """The upstream could not be reached or broke off the exchange."""


class UpstreamPool:
    """Keep-alive HTTP/1.1 connections to one upstream, reused last-in first-out.

    A request that fails on a reused connection before any byte of an answer arrived (the
    upstream closed it while idle) is retried once on a fresh connection; connections idle
    longer than `idle_expiry` are not reused (uvicorn closes them after 5 s)."""

    def __init__(
        self,
        upstream_url: str,
        *,
        max_connections: int = 1000,
        max_idle: int = 500,
        idle_expiry: float = 4.0,
        connect_timeout: float = 10.0,
        timeout: float = 300.0,
    ) -> None:
        parts = upstream_parts(upstream_url)
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self._ssl = ssl.create_default_context() if parts.scheme == "https" else None
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self._slots = asyncio.Semaphore(max_connections)
        self._max_idle = max_idle
        self._idle_expiry = idle_expiry
        self._connect_timeout = connect_timeout
        self._timeout = timeout
        self.opened = 0

    async def request(
        self,
        method: bytes,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
    ) -> Answer:
        async with self._slots:
            for attempt in (1, 2):
                reused, reader, writer = await self._checkout()
                conn = h11.Connection(h11.CLIENT)
                received = [0]
                try:
                    async with asyncio.timeout(self._timeout):
                        data = conn.send(h11.Request(method=method, target=target, headers=headers))
                        if body:
                            data += conn.send(h11.Data(data=body))
                        data += conn.send(h11.EndOfMessage())
                        writer.write(data)
                        await writer.drain()
                        while True:
                            event = await next_event(conn, reader, received)
                            if not isinstance(event, h11.InformationalResponse):
                                break
                        if not isinstance(event, h11.Response):
                            raise UpstreamError("upstream closed without an answer")
                        chunks: list[bytes] = []
                        while True:
                            part = await next_event(conn, reader, received)
                            if isinstance(part, h11.Data):
                                chunks.append(bytes(part.data))
                            elif isinstance(part, h11.EndOfMessage):
                                break
                            else:
                                raise UpstreamError("upstream broke off the answer")
                except (
                    OSError,
                    h11.ProtocolError,
                    UpstreamError,
                    asyncio.IncompleteReadError,
                    TimeoutError,
                ) as e:
                    writer.close()
                    if (
                        reused
                        and not received[0]
                        and attempt == 1
                        and not isinstance(e, TimeoutError)
                    ):
                        continue  # a stale keep-alive connection: once more on a fresh one
                    if isinstance(e, TimeoutError):
                        raise UpstreamError(f"no answer within {self._timeout:g}s") from e
                    raise UpstreamError(repr(e)) from e
                except BaseException:
                    writer.close()
                    raise
                self._checkin(conn, reader, writer)
                return Answer(event.status_code, list(event.headers.raw_items()), b"".join(chunks))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _checkout(self) -> tuple[bool, asyncio.StreamReader, asyncio.StreamWriter]:
        now = time.monotonic()
        while self._idle:
            reader, writer, since = self._idle.pop()
            if now - since < self._idle_expiry and not reader.at_eof() and not writer.is_closing():
                return True, reader, writer
            writer.close()
        try:
            async with asyncio.timeout(self._connect_timeout):
                reader, writer = await asyncio.open_connection(
                    self.host, self.port, ssl=self._ssl, limit=READ_CHUNK * 4
                )
        except (OSError, TimeoutError) as e:
            raise UpstreamError(f"cannot connect to {self.host}:{self.port}: {e!r}") from e
        self.opened += 1
        return False, reader, writer

    def _checkin(
        self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if (
            conn.our_state is h11.DONE
            and conn.their_state is h11.DONE
            and len(self._idle) < self._max_idle
        ):
            self._idle.append((reader, writer, time.monotonic()))
        else:
            writer.close()

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for _, writer, _ in idle:
            writer.close()


# ---- helpers ------------------------------------------------------------------------------


async def next_event(
    conn: h11.Connection, reader: asyncio.StreamReader, received: list[int] | None = None
) -> Any:
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        data = await reader.read(READ_CHUNK)
        if received is not None:
            received[0] += len(data)
        conn.receive_data(data)


async def send_answer(conn: h11.Connection, writer: asyncio.StreamWriter, answer: Answer) -> None:
    headers = answer.headers
    if not any(k.lower() == b"content-length" for k, _ in headers):
        headers = [*headers, (b"content-length", str(len(answer.body)).encode())]
    data = conn.send(h11.Response(status_code=answer.status, headers=headers))
    if answer.body:
        data += conn.send(h11.Data(data=answer.body))
    data += conn.send(h11.EndOfMessage())
    writer.write(data)
    await writer.drain()


def abort(writer: asyncio.StreamWriter) -> None:
    """Closes with an RST: SO_LINGER 0, then drop the transport without flushing."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def strip_hop_by_hop(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Drops hop-by-hop headers, including those the Connection header names; keeps the case
    and order of the rest."""
    items = list(headers)
    named = {
        token.strip().lower()
        for k, v in items
        if k.lower() == b"connection"
        for token in v.split(b",")
    }
    return [(k, v) for k, v in items if k.lower() not in HOP_BY_HOP_B and k.lower() not in named]
