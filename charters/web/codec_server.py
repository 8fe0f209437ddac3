"""Temporal codec server: lets the Temporal CLI and Web UI show encrypted payloads in clear.

Protocol (Temporal's remote codec protocol): `POST .../encode` and `POST .../decode` take and
return `temporal.api.common.v1.Payloads` in protobuf JSON, i.e.
`{"payloads": [{"metadata": {"encoding": "<base64>"}, "data": "<base64>"}]}`. Only the last
path segment is looked at, so the app can be mounted under a prefix. Clients send
`X-Namespace`; one key ring serves every namespace here. `GET /healthz` needs no token.

Authentication: every encode/decode needs `Authorization: Bearer <token>`: the static token
(constant-time compare) or an authentic OIDC access token; anything else is a 401.
Authorization: an authentic OIDC token whose holder is not on the allow-list (a user or group
claim, charters/web/oidc.py) is a 403, logged with who it was. Decoded payloads hold guest PII,
so responses are `Cache-Control: no-store` and nothing in them is logged.

Who can send the token:
- Temporal CLI: `temporal workflow show -w <id> --codec-endpoint http://127.0.0.1:<port>
  --codec-auth "Bearer <token>"` (the flag is the whole Authorization header value).
- Temporal Web UI: it sends an `Authorization` header ONLY when its codec setting "pass access
  token" is on (`TEMPORAL_CODEC_PASS_ACCESS_TOKEN` / `codec.passAccessToken`), and then it
  sends *its own* OIDC access token, and only to an https endpoint (otherwise it gives up and
  shows the encrypted payloads). It cannot be configured with a static token. So with this
  static-token check, a UI without auth (the local dev server's UI) shows payloads encrypted
  ("binary/encrypted"); that is the safe failure. To decode in a browser, put the codec server
  behind https and give it the identity provider (`verifier`, charters/web/oidc.py: the
  UI's OIDC access token checked against the JWKS for issuer, audience and expiry), or use
  the CLI as above.
- The browser calls the codec server straight from the UI's origin, so that origin must be
  in `cors_origins` (preflight allows `Authorization, Content-Type, X-Namespace` and
  credentials, for the UI's "include cross-origin credentials" option).
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Sequence

from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.converter import PayloadCodec

from charters.web.oidc import OidcVerifier

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024 * 1024  # Temporal's own payload limit is 2 MB; a page of events fits
ALLOW_HEADERS = "Authorization, Content-Type, X-Namespace"
ALLOW_METHODS = "GET, POST, OPTIONS"
MIN_TOKEN_CHARS = 16
_NO_STORE = {"Cache-Control": "no-store"}


def codec_app(
    codec: PayloadCodec,
    auth_token: str,
    cors_origins: Sequence[str],
    trust_ui_origin: bool = False,
    verifier: OidcVerifier | None = None,
) -> ASGIApp:
    """Builds the ASGI app. `cors_origins` are exact origins, e.g. `http://127.0.0.1:8233`.

    `trust_ui_origin` is for the local stack only (loopback): a browser request from a listed
    origin is accepted without the token, since the dev server's UI cannot send a static one."""
    if len(auth_token) < MIN_TOKEN_CHARS:
        raise ValueError(
            f"codec server auth token must be at least {MIN_TOKEN_CHARS} characters "
            "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    if "*" in cors_origins:
        raise ValueError("codec server CORS origins must be listed; '*' cannot carry credentials")
    expected = f"Bearer {auth_token}".encode()

    async def authorized(request: Request) -> int:
        """200 when allowed, 401 when not authenticated, 403 when authentic but not allowed."""
        header = request.headers.get("authorization", "")
        given = header.encode("utf-8", errors="replace")
        if trust_ui_origin and not given and request.headers.get("origin") in cors_origins:
            return 200
        if hmac.compare_digest(given, expected):
            return 200
        scheme, _, token = header.partition(" ")
        if verifier is None or scheme.lower() != "bearer" or not token:
            return 401
        claims = await verifier.verify(token.strip())
        if claims is None:
            return 401
        return 200 if verifier.authorize(claims) else 403

    def endpoint(
        transform: Callable[[Sequence[Payload]], Awaitable[list[Payload]]], name: str
    ) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            verdict = await authorized(request)
            if verdict == 401:
                return JSONResponse(
                    {"error": "unauthorized"},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer", **_NO_STORE},
                )
            if verdict == 403:
                return JSONResponse(
                    {"error": "forbidden: not allowed to decode"},
                    status_code=403,
                    headers={
                        "WWW-Authenticate": 'Bearer error="insufficient_scope"',
                        **_NO_STORE,
                    },
                )
            body = await _read_body(request)
            if body is None:
                return _error(413, f"body larger than {MAX_BODY_BYTES} bytes")
            try:
                incoming = json_format.ParseDict(json.loads(body), Payloads())
            except (ValueError, json_format.ParseError, TypeError, AttributeError) as e:
                return _error(400, f"body is not protobuf-JSON Payloads: {type(e).__name__}")
            try:
                outgoing = await transform(incoming.payloads)
            except ValueError as e:  # the codec's messages name key ids, never keys or data
                return _error(400, f"{name} failed: {e}")
            result = json_format.MessageToDict(Payloads(payloads=outgoing))
            result.setdefault("payloads", [])
            return JSONResponse(result, headers=_NO_STORE)

        return handle

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True})

    encode = endpoint(codec.encode, "encode")
    decode = endpoint(codec.decode, "decode")
    app = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/encode", encode, methods=["POST"]),
            Route("/decode", decode, methods=["POST"]),
            Route("/{prefix:path}/encode", encode, methods=["POST"]),
            Route("/{prefix:path}/decode", decode, methods=["POST"]),
        ]
    )
    return _Cors(app, frozenset(cors_origins))


async def _read_body(request: Request) -> bytes | None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status, headers=_NO_STORE)


class _Cors:
    """Exact-origin CORS with credentials; wraps the whole app so 401/400 answers carry it too."""

    def __init__(self, app: ASGIApp, origins: frozenset[str]) -> None:
        self.app = app
        self.origins = origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        allowed = origin is not None and origin in self.origins

        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            if not allowed:
                response: Response = Response(
                    "origin not allowed", status_code=403, headers={"Vary": "Origin"}
                )
            else:
                response = Response(
                    status_code=204,
                    headers={
                        "Access-Control-Allow-Origin": origin or "",
                        "Access-Control-Allow-Methods": ALLOW_METHODS,
                        "Access-Control-Allow-Headers": ALLOW_HEADERS,
                        "Access-Control-Allow-Credentials": "true",
                        "Access-Control-Max-Age": "600",
                        "Vary": "Origin",
                    },
                )
            await response(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                out.add_vary_header("Origin")
                if allowed and origin is not None:
                    out["Access-Control-Allow-Origin"] = origin
                    out["Access-Control-Allow-Credentials"] = "true"
            await send(message)

        await self.app(scope, receive, send_with_cors)
