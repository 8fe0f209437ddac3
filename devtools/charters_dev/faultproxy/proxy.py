"""The fault proxy: one listening port, its spec's faults applied to each request, the rest
forwarded upstream; admin endpoints under `/__faults`. See the package's docstring."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import random
from typing import Any
from urllib.parse import urlsplit

import h11
from pydantic import ValidationError

from charters_dev import ses_simulator
from charters_dev.faultproxy.answers import injected, json_answer
from charters_dev.faultproxy.gate import ClientGone, Gate, holds_admin, is_holds_admin
from charters_dev.faultproxy.spec import ADMIN, FAULT_KINDS, FaultSpec, ProxyTarget
from charters_dev.faultproxy.transport import (
    MAX_BODY,
    READ_CHUNK,
    Answer,
    ResetConnection,
    UpstreamError,
    UpstreamPool,
    abort,
    next_event,
    send_answer,
    strip_hop_by_hop,
    upstream_parts,
)

log = logging.getLogger("charters.faultproxy")


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
        parts = upstream_parts(upstream_url)
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
        self.gate = Gate()
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
        except ResetConnection:
            abort(writer)
            return
        except (ConnectionError, asyncio.IncompleteReadError, h11.ProtocolError):
            pass
        except asyncio.CancelledError:  # the proxy is closing
            abort(writer)
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
                event = await next_event(conn, reader)
            except h11.RemoteProtocolError as e:
                if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    await send_answer(conn, writer, Answer(e.error_status_hint, [], b""))
                return
            if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return
            if not isinstance(event, h11.Request):  # pragma: no cover - h11 guarantees order
                return
            if conn.they_are_waiting_for_100_continue:
                writer.write(conn.send(h11.InformationalResponse(status_code=100, headers=[])))
            body = bytearray()
            while True:
                part = await next_event(conn, reader)
                if isinstance(part, h11.Data):
                    body += part.data
                    if len(body) > MAX_BODY:
                        await send_answer(conn, writer, Answer(413, [], b"request body too large"))
                        return
                elif isinstance(part, h11.EndOfMessage):
                    break
                else:
                    return  # the client went away mid-body
            spill = bytearray()
            held = await self._handle(
                event, bytes(body), functools.partial(_client_gone, reader, spill)
            )
            if held is None:
                return  # held, and its client went away: nothing to answer
            if spill:
                conn.receive_data(bytes(spill))
            await send_answer(conn, writer, held)
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                return
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:
                return

    # ---- one request --------------------------------------------------------------------

    async def _handle(
        self, request: h11.Request, body: bytes, client_gone: ClientGone
    ) -> Answer | None:
        """The answer, or None for a held request whose client went away (gate.py)."""
        target = request.target
        if is_holds_admin(target):
            status, data = holds_admin(self.gate, request.method.decode("ascii"), target, body)
            return json_answer(status, data)
        hold = self.gate.find(request.method, target, body)
        if hold is not None:
            answer: Answer | None = await self.gate.pass_through(
                hold, lambda: self._faulted(request, body), client_gone
            )
            return answer
        return await self._faulted(request, body)

    async def _faulted(self, request: h11.Request, body: bytes) -> Answer:
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
        wanted = spec.match is None or spec.match.encode() in body
        if (
            wanted
            and spec.error_rate
            and (spec.error_rate >= 1 or self._rng.random() < spec.error_rate)
        ):
            kind = self._rng.choice(spec.kinds)

        if kind is not None and kind != "slow" and not spec.after_upstream:
            return self._fault(kind, request)
        answer = await self._forward(request, body)
        if self.aws and answer.status == 200:
            await self._mailbox_simulator(request, body, answer)
        if kind == "slow":
            self._faults["slow"] += 1
            await asyncio.sleep(spec.slow_ms / 1000)
            return answer
        if kind is not None:
            return self._fault(kind, request)
        return answer

    async def _mailbox_simulator(self, request: h11.Request, body: bytes, answer: Answer) -> None:
        """SES's mailbox simulator (charters_dev.ses_simulator): a send to the bounce address
        that moto accepted is followed by the bounce event SES would publish."""
        if request.method != b"POST" or not request.target.startswith(
            ses_simulator.SEND_PATH.encode()
        ):
            return
        headers = dict(request.headers)
        region = ses_simulator.region_of(headers.get(b"authorization", b""))
        try:
            message_id = str(json.loads(answer.body).get("MessageId", ""))
        except ValueError:
            return
        event = ses_simulator.bounce_event(body, message_id)
        if event is None or region is None:
            return
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(
                None, ses_simulator.publish, self.upstream_url, region, event
            )
        except Exception as exc:  # noqa: BLE001 - the send itself succeeded; log and go on
            log.warning("faultproxy %s: simulated bounce not published: %s", self.name, exc)

    async def _forward(self, request: h11.Request, body: bytes) -> Answer:
        assert self._pool is not None
        raw = list(request.headers.raw_items())
        framed = any(k.lower() in (b"content-length", b"transfer-encoding") for k, _ in raw)
        out = strip_hop_by_hop(raw)
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
            return json_answer(502, {"message": f"fault proxy: upstream failed: {e}"})
        no_body = request.method == b"HEAD" or answer.status in (204, 304)
        headers = strip_hop_by_hop(answer.headers)
        if no_body:  # keep the upstream's Content-Length: HEAD answers carry the real one
            headers += [(k, v) for k, v in answer.headers if k.lower() == b"content-length"]
        else:
            headers.append((b"Content-Length", str(len(answer.body)).encode()))
        return Answer(answer.status, headers, b"" if no_body else answer.body)

    def _fault(self, kind: str, request: h11.Request) -> Answer:
        self._faults[kind] += 1
        log.debug("faultproxy %s: %s for %s %s", self.name, kind, request.method, request.target)
        if kind == "reset":
            raise ResetConnection
        return injected(kind, request, aws=self.aws, recipient=self.spec.match)

    def _admin(self, method: str, body: bytes) -> Answer:
        if method == "GET":
            return json_answer(200, self.status())
        if method == "DELETE":
            return json_answer(200, {**self.status(), "counters": self.reset_counters()})
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
                return json_answer(400, {"message": str(e)})
            return json_answer(200, self.status())
        return json_answer(
            405, {"message": "use GET, PUT or DELETE"}, [(b"allow", b"GET, PUT, DELETE")]
        )


async def _client_gone(reader: asyncio.StreamReader, spill: bytearray) -> None:
    """Returns when the client closes while its request is held; bytes of a pipelined request
    read meanwhile are kept in `spill` for h11."""
    while data := await reader.read(READ_CHUNK):
        spill.extend(data)
