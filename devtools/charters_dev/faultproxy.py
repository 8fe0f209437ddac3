"""A latency and fault proxy for the local stack.

moto and the stand-ins never fail on their own, so the stack puts one of these reverse HTTP
proxies in front of each external endpoint (moto, the calendar stand-in, the SCC stand-in) and
lets tests and the chaos run add latency and failures, and switch them at run time.

It is a raw HTTP/1.1 server (asyncio streams + h11) rather than an ASGI app because one of the
faults is a connection reset, which ASGI cannot express. Requests go upstream over a pool of
keep-alive HTTP/1.1 connections, also asyncio + h11 (httpx's pool costs O(connections) per
request and capped the proxy near 250 req/s; this one does ~1000 on two shared cores). Every
wait is an `asyncio.sleep`.

Faults, chosen per request with probability `error_rate` from `kinds`:

- `400`: a rejection no retry can fix (`ValidationException` for AWS targets).
- `500`, `503`: that status. For AWS targets the body is an AWS error (`InternalError`,
  `ServiceUnavailable`) that botocore parses.
- `throttle`: AWS targets answer 400 `ThrottlingException` (header `x-amzn-ErrorType` and a body
  in the request's protocol: JSON `{"__type": ...}` for the JSON protocols, otherwise an
  `<ErrorResponse>` XML document that the query, rest-xml (S3, CloudFront) parsers read; the
  rest-json parsers take the code from the header). Other targets answer 429 with
  `Retry-After: 1`.
- `reset`: the TCP connection is closed with an RST and no answer.
- `slow`: the request is forwarded and the answer held back `slow_ms`.

`500`/`503`/`throttle`/`reset` happen before forwarding (upstream never sees the request) unless
`after_upstream` is set: then the request is forwarded, its effect happens, and the answer is
replaced by the fault. Every request first waits `delay_ms` ± `jitter_ms`.

Admin endpoints on every proxy port (never forwarded): `GET /__faults` (spec and counters),
`PUT /__faults` (a JSON FaultSpec object, or a JSON string in the compact form) and
`DELETE /__faults` (answers the counters, then zeroes them).

Run: `python -m charters_dev.faultproxy --listen 9000 --upstream http://127.0.0.1:5055
--aws --spec "delay=50,jitter=5,error=0.1,kinds=503|throttle|reset"` or `--targets '[{"name":
"moto", "listen_port": 9000, "upstream": "http://127.0.0.1:5055", "aws": true, "spec": "..."}]'`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import random
import signal
import socket
import ssl
import struct
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any, Literal
from urllib.parse import SplitResult, urlsplit

import h11
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

log = logging.getLogger("charters.faultproxy")

FaultKind = Literal["400", "500", "503", "throttle", "reset", "slow"]
FAULT_KINDS: tuple[str, ...] = ("400", "500", "503", "throttle", "reset", "slow")
ADMIN_PATH = "/__faults"
ADMIN = ADMIN_PATH.encode()
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


# ---- the fault spec -----------------------------------------------------------------------


# key in the compact form -> FaultSpec field
SPEC_KEYS: dict[str, str] = {
    "delay": "delay_ms",
    "delay_ms": "delay_ms",
    "jitter": "jitter_ms",
    "jitter_ms": "jitter_ms",
    "error": "error_rate",
    "error_rate": "error_rate",
    "rate": "error_rate",
    "kinds": "kinds",
    "kind": "kinds",
    "slow": "slow_ms",
    "slow_ms": "slow_ms",
    "seed": "seed",
    "after": "after_upstream",
    "after_upstream": "after_upstream",
}


def _default_kinds() -> list[FaultKind]:
    return ["503"]


class FaultSpec(BaseModel):
    """What a proxy does to the requests it carries. The default spec is a plain pass-through."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    delay_ms: float = Field(0.0, ge=0, description="added to every request")
    jitter_ms: float = Field(0.0, ge=0, description="the delay varies uniformly by ± this")
    error_rate: float = Field(0.0, ge=0, le=1, description="share of requests that get a fault")
    kinds: list[FaultKind] = Field(
        default_factory=_default_kinds,
        min_length=1,
        description="faults to choose from, uniformly",
    )
    slow_ms: float = Field(2000.0, ge=0, description="how long `slow` holds the answer")
    seed: int | None = Field(None, description="for a repeatable sequence of faults")
    after_upstream: bool = Field(
        False,
        description="forward first, then replace the answer with the fault",
    )

    @property
    def active(self) -> bool:
        return bool(self.delay_ms or self.jitter_ms or self.error_rate)

    @classmethod
    def parse(cls, text: str) -> FaultSpec:
        """The compact form used in settings and on the command line:

            spec  := "" | "off" | "none" | item ("," item)*
            item  := key "=" value
            delay, jitter, slow (ms; a number, "50ms" or "1.5s"; long names delay_ms, ...)
            error (a rate 0..1 or a percentage "10%"; also error_rate, rate)
            kinds ("500" | "503" | "throttle" | "reset" | "slow", joined by "|"; also kind)
            after (1/0, true/false, yes/no; also after_upstream)
            seed  (an integer, or "none")

        e.g. `delay=50,jitter=5,error=0.1,kinds=503|throttle|reset,after=1`. Raises ValueError
        naming the offending key."""
        text = text.strip()
        if text.lower() in ("", "off", "none"):
            return cls()
        fields: dict[str, Any] = {}
        used: dict[str, str] = {}  # field -> key as written
        for raw in text.split(","):
            item = raw.strip()
            if not item:
                continue
            key, eq, value = item.partition("=")
            key, value = key.strip().lower(), value.strip()
            if not eq or not key:
                raise ValueError(f"fault spec: {item!r} is not key=value")
            field = SPEC_KEYS.get(key)
            if field is None:
                known = ", ".join(sorted({k for k in SPEC_KEYS if "_" not in k}))
                raise ValueError(f"fault spec: unknown key {key!r} (known keys: {known})")
            if field in used:
                raise ValueError(f"fault spec: key {key!r} given twice")
            used[field] = key
            try:
                fields[field] = _parse_value(field, value)
            except ValueError as e:
                raise ValueError(f"fault spec: bad value for {key!r}: {e}") from None
        try:
            return cls(**fields)
        except ValidationError as e:
            first = e.errors()[0]
            field = str(first["loc"][0]) if first["loc"] else "?"
            key = used.get(field, field)
            raise ValueError(f"fault spec: bad value for {key!r}: {first['msg']}") from None

    def to_text(self) -> str:
        """The compact form (only what differs from the default); parse() inverts it."""
        default = FaultSpec()
        parts: list[str] = []
        for key, field in (
            ("delay", "delay_ms"),
            ("jitter", "jitter_ms"),
            ("error", "error_rate"),
            ("kinds", "kinds"),
            ("slow", "slow_ms"),
            ("seed", "seed"),
            ("after", "after_upstream"),
        ):
            value = getattr(self, field)
            if value == getattr(default, field):
                continue
            if field == "kinds":
                parts.append(f"kinds={'|'.join(value)}")
            elif field == "after_upstream":
                parts.append(f"after={int(value)}")
            else:
                parts.append(f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}")
        return ",".join(parts) or "off"


def _parse_value(field: str, value: str) -> Any:
    if not value:
        raise ValueError("empty")
    if field in ("delay_ms", "jitter_ms", "slow_ms"):
        v = value.lower()
        if v.endswith("ms"):
            return float(v[:-2])
        if v.endswith("s"):
            return float(v[:-1]) * 1000
        return float(v)
    if field == "error_rate":
        return float(value[:-1]) / 100 if value.endswith("%") else float(value)
    if field == "kinds":
        kinds = [k.strip() for k in value.split("|") if k.strip()]
        bad = [k for k in kinds if k not in FAULT_KINDS]
        if bad:
            raise ValueError(f"unknown kind {bad[0]!r} (kinds: {'|'.join(FAULT_KINDS)})")
        return kinds
    if field == "after_upstream":
        v = value.lower()
        if v in ("1", "true", "yes", "on"):
            return True
        if v in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{value!r} is not a boolean (1/0, true/false)")
    if field == "seed":
        return None if value.lower() == "none" else int(value)
    raise ValueError(f"unknown field {field}")  # pragma: no cover - SPEC_KEYS covers every field


class ProxyTarget(BaseModel):
    """One proxy of several run by `serve_proxies` / `--targets`."""

    model_config = ConfigDict(extra="forbid")

    name: str
    listen_port: int = Field(ge=0, le=65535, description="0 picks a free port")
    upstream: str = Field(description="e.g. http://127.0.0.1:5055 (a path prefix is kept)")
    aws: bool = False
    spec: FaultSpec = Field(default_factory=FaultSpec)
    preserve_host: bool | None = Field(
        None,
        description="forward the client's Host header; default: only for AWS targets",
    )

    @field_validator("spec", mode="before")
    @classmethod
    def _compact(cls, value: Any) -> Any:
        if value is None:
            return FaultSpec()
        return FaultSpec.parse(value) if isinstance(value, str) else value


# ---- the proxy ------------------------------------------------------------------------------


class _Reset(Exception):
    """Abort the client connection with an RST."""


class _Answer:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


def _upstream_parts(url: str) -> SplitResult:
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
        parts = _upstream_parts(upstream_url)
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
    ) -> _Answer:
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
                            event = await _next_event(conn, reader, received)
                            if not isinstance(event, h11.InformationalResponse):
                                break
                        if not isinstance(event, h11.Response):
                            raise UpstreamError("upstream closed without an answer")
                        chunks: list[bytes] = []
                        while True:
                            part = await _next_event(conn, reader, received)
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
                return _Answer(event.status_code, list(event.headers.raw_items()), b"".join(chunks))
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


class FaultProxy:
    """A reverse proxy from `listen_port` to `upstream_url` that adds the faults of `spec`."""

    def __init__(
        self,
        listen_port: int,
        upstream_url: str,
        spec: FaultSpec | str | None = None,
        aws: bool = False,
        *,
        name: str | None = None,
        host: str = "127.0.0.1",
        preserve_host: bool | None = None,
    ) -> None:
        parts = _upstream_parts(upstream_url)
        self.upstream_url = upstream_url
        self._prefix = parts.path.rstrip("/").encode("latin-1")
        self._upstream_host = parts.netloc.encode()
        self.aws = aws
        self.name = name or parts.netloc
        self.host = host
        self.listen_port = listen_port
        self.preserve_host = aws if preserve_host is None else preserve_host
        self._pool: UpstreamPool | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self.port = listen_port
        self.spec = FaultSpec()
        self._rng = random.Random()
        self.set_spec(spec if spec is not None else FaultSpec())
        self.reset_counters()

    @classmethod
    def from_target(cls, target: ProxyTarget, *, host: str = "127.0.0.1") -> FaultProxy:
        return cls(
            target.listen_port,
            target.upstream,
            target.spec,
            target.aws,
            name=target.name,
            host=host,
            preserve_host=target.preserve_host,
        )

    @property
    def pool(self) -> UpstreamPool | None:
        """The upstream connection pool, while the proxy runs."""
        return self._pool

    # ---- spec and counters --------------------------------------------------------------

    def set_spec(self, spec: FaultSpec | str) -> FaultSpec:
        self.spec = FaultSpec.parse(spec) if isinstance(spec, str) else spec
        self._rng = random.Random(self.spec.seed)
        log.info("faultproxy %s: spec %s", self.name, self.spec.to_text())
        return self.spec

    def reset_counters(self) -> dict[str, Any]:
        """Zeroes the counters and answers their values before."""
        before = self.counters() if hasattr(self, "_faults") else {}
        self._requests = 0
        self._forwarded = 0
        self._upstream_errors = 0
        self._faults = dict.fromkeys(FAULT_KINDS, 0)
        return before

    def counters(self) -> dict[str, Any]:
        return {
            "requests": self._requests,
            "forwarded": self._forwarded,
            "upstream_errors": self._upstream_errors,
            "faults": dict(self._faults),
            "faults_total": sum(self._faults.values()),
        }

    def status(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "listen_port": self.port,
            "upstream": self.upstream_url,
            "aws": self.aws,
            "spec": self.spec.model_dump(),
            "spec_text": self.spec.to_text(),
            "counters": self.counters(),
        }

    # ---- lifecycle ----------------------------------------------------------------------

    async def start(self) -> int:
        """Listens; answers the bound port (useful with listen_port=0)."""
        if self._server is None:
            self._pool = UpstreamPool(self.upstream_url)
            self._server = await asyncio.start_server(
                self._on_connection,
                self.host,
                self.listen_port,
                backlog=1024,
                limit=READ_CHUNK * 4,
            )
            self.port = int(self._server.sockets[0].getsockname()[1])
            log.info(
                "faultproxy %s listening on %s:%d -> %s (%s)",
                self.name,
                self.host,
                self.port,
                self.upstream_url,
                self.spec.to_text(),
            )
        return self.port

    async def serve(self) -> None:
        """Runs until cancelled, then closes."""
        await self.start()
        assert self._server is not None
        try:
            await self._server.serve_forever()
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        if server is not None:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.aclose()

    async def __aenter__(self) -> FaultProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ---- one client connection ----------------------------------------------------------

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._serve_connection(reader, writer)
        except _Reset:
            _abort(writer)
            return
        except (ConnectionError, asyncio.IncompleteReadError, h11.ProtocolError):
            pass
        except asyncio.CancelledError:  # the proxy is closing
            _abort(writer)
            return
        except Exception:
            log.exception("faultproxy %s: connection failed", self.name)
        finally:
            self._connections.discard(task)
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        conn = h11.Connection(h11.SERVER)
        while True:
            try:
                event = await _next_event(conn, reader)
            except h11.RemoteProtocolError as e:
                if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    await _send(conn, writer, _Answer(e.error_status_hint, [], b""))
                return
            if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return
            if not isinstance(event, h11.Request):  # pragma: no cover - h11 guarantees order
                return
            if conn.they_are_waiting_for_100_continue:
                writer.write(conn.send(h11.InformationalResponse(status_code=100, headers=[])))
            body = bytearray()
            while True:
                part = await _next_event(conn, reader)
                if isinstance(part, h11.Data):
                    body += part.data
                    if len(body) > MAX_BODY:
                        await _send(conn, writer, _Answer(413, [], b"request body too large"))
                        return
                elif isinstance(part, h11.EndOfMessage):
                    break
                else:
                    return  # the client went away mid-body
            answer = await self._handle(event, bytes(body))
            await _send(conn, writer, answer)
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                return
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:
                return

    # ---- one request --------------------------------------------------------------------

    async def _handle(self, request: h11.Request, body: bytes) -> _Answer:
        target = request.target
        if target == ADMIN or target.startswith((ADMIN + b"?", ADMIN + b"/")):
            return self._admin(request.method.decode("ascii"), body)

        spec = self.spec
        self._requests += 1
        delay = spec.delay_ms
        if spec.jitter_ms:
            delay += self._rng.uniform(-spec.jitter_ms, spec.jitter_ms)
        if delay > 0:
            await asyncio.sleep(delay / 1000)
        kind: str | None = None
        if spec.error_rate and (spec.error_rate >= 1 or self._rng.random() < spec.error_rate):
            kind = self._rng.choice(spec.kinds)

        if kind is not None and kind != "slow" and not spec.after_upstream:
            return self._fault(kind, request)
        answer = await self._forward(request, body)
        if kind == "slow":
            self._faults["slow"] += 1
            await asyncio.sleep(spec.slow_ms / 1000)
            return answer
        if kind is not None:
            return self._fault(kind, request)
        return answer

    async def _forward(self, request: h11.Request, body: bytes) -> _Answer:
        assert self._pool is not None
        raw = list(request.headers.raw_items())
        framed = any(k.lower() in (b"content-length", b"transfer-encoding") for k, _ in raw)
        out = _strip(raw)
        if not self.preserve_host:
            out = [(k, v) for k, v in out if k.lower() != b"host"]
            out.insert(0, (b"Host", self._upstream_host))
        if body or framed:
            out.append((b"Content-Length", str(len(body)).encode()))
        target = request.target
        if not target.startswith(b"/"):  # absolute-form (http://host/path?q) or "*"
            absolute = urlsplit(target.decode("latin-1"))
            target = (absolute.path or "/").encode("latin-1") + (
                b"?" + absolute.query.encode("latin-1") if absolute.query else b""
            )
        path = self._prefix + target
        self._forwarded += 1
        try:
            answer = await self._pool.request(request.method, path, out, body)
        except UpstreamError as e:
            self._upstream_errors += 1
            log.warning(
                "faultproxy %s: upstream %s %s failed: %s",
                self.name,
                request.method.decode(),
                target.decode("latin-1"),
                e,
            )
            return _json_answer(502, {"message": f"fault proxy: upstream failed: {e}"})
        no_body = request.method == b"HEAD" or answer.status in (204, 304)
        headers = _strip(answer.headers)
        if no_body:  # keep the upstream's Content-Length: HEAD answers carry the real one
            headers += [(k, v) for k, v in answer.headers if k.lower() == b"content-length"]
        else:
            headers.append((b"Content-Length", str(len(answer.body)).encode()))
        return _Answer(answer.status, headers, b"" if no_body else answer.body)

    def _fault(self, kind: str, request: h11.Request) -> _Answer:
        self._faults[kind] += 1
        log.debug("faultproxy %s: %s for %s %s", self.name, kind, request.method, request.target)
        if kind == "reset":
            raise _Reset
        marker = (b"x-fault-injected", kind.encode())
        if kind == "throttle":
            if self.aws:
                return _aws_error(400, "ThrottlingException", "Rate exceeded", request, marker)
            return _json_answer(
                429, {"message": "fault proxy: rate exceeded"}, [(b"retry-after", b"1"), marker]
            )
        status = int(kind)
        if self.aws and status == 400:
            return _aws_error(
                400, "ValidationException", "fault proxy: injected 400", request, marker
            )
        if self.aws:
            code = "InternalError" if status == 500 else "ServiceUnavailable"
            return _aws_error(status, code, f"fault proxy: injected {status}", request, marker)
        return _json_answer(status, {"message": f"fault proxy: injected {status}"}, [marker])

    def _admin(self, method: str, body: bytes) -> _Answer:
        if method == "GET":
            return _json_answer(200, self.status())
        if method == "DELETE":
            return _json_answer(200, {**self.status(), "counters": self.reset_counters()})
        if method == "PUT":
            try:
                data = json.loads(body or b"{}")
                if isinstance(data, str):
                    self.set_spec(FaultSpec.parse(data))
                elif isinstance(data, dict):
                    self.set_spec(FaultSpec.model_validate(data))
                else:
                    raise ValueError("body must be a JSON object (FaultSpec) or string")
            except (ValueError, ValidationError) as e:
                return _json_answer(400, {"message": str(e)})
            return _json_answer(200, self.status())
        return _json_answer(
            405, {"message": "use GET, PUT or DELETE"}, [(b"allow", b"GET, PUT, DELETE")]
        )


# ---- helpers ------------------------------------------------------------------------------


async def _next_event(
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


async def _send(conn: h11.Connection, writer: asyncio.StreamWriter, answer: _Answer) -> None:
    headers = answer.headers
    if not any(k.lower() == b"content-length" for k, _ in headers):
        headers = [*headers, (b"content-length", str(len(answer.body)).encode())]
    data = conn.send(h11.Response(status_code=answer.status, headers=headers))
    if answer.body:
        data += conn.send(h11.Data(data=answer.body))
    data += conn.send(h11.EndOfMessage())
    writer.write(data)
    await writer.drain()


def _abort(writer: asyncio.StreamWriter) -> None:
    """Closes with an RST: SO_LINGER 0, then drop the transport without flushing."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _strip(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
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


def _json_answer(
    status: int, data: Any, headers: list[tuple[bytes, bytes]] | None = None
) -> _Answer:
    return _Answer(
        status,
        [(b"content-type", b"application/json"), *(headers or [])],
        json.dumps(data).encode(),
    )


def _aws_error(
    status: int, code: str, message: str, request: h11.Request, marker: tuple[bytes, bytes]
) -> _Answer:
    """An AWS error every botocore protocol parser reads as `code`: JSON for the JSON protocols
    (X-Amz-Target / x-amz-json content type), XML otherwise; the x-amzn-ErrorType header covers
    rest-json services whose body is ignored."""
    request_id = str(uuid.uuid4())
    headers = dict(request.headers)  # h11 gives lower-case names
    content_type = headers.get(b"content-type", b"")
    common = [
        (b"x-amzn-errortype", code.encode()),
        (b"x-amzn-requestid", request_id.encode()),
        (b"x-amz-request-id", request_id.encode()),
        marker,
    ]
    if b"x-amz-target" in headers or b"json" in content_type:
        return _Answer(
            status,
            [(b"content-type", b"application/x-amz-json-1.0"), *common],
            json.dumps({"__type": code, "message": message}).encode(),
        )
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse><Error><Type>'
        f"{'Sender' if status < 500 else 'Receiver'}</Type><Code>{code}</Code>"
        f"<Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
    )
    return _Answer(status, [(b"content-type", b"application/xml"), *common], body.encode())


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


if __name__ == "__main__":
    main(sys.argv[1:])
