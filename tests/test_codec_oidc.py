"""The codec server accepts the Web UI's OIDC access token only when it is valid: signed by a key
of the identity provider's JWKS (served here over HTTP, key made here), right issuer and audience,
not expired, and never with `alg: none`."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.testclient import TestClient

from charters.codec import codec_from_key_ring, generate_key
from charters.web.codec_server import codec_app
from charters.web.oidc import OidcVerifier

ISSUER = "https://login.example.test/"
AUDIENCE = "temporal-ui"
UI = "https://temporal.example.test"
STATIC = "static-cli-token-0123456789"


@pytest.fixture(scope="module")
def signing_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig"}, private=True)


@pytest.fixture(scope="module")
def jwks_url(signing_key: RSAKey) -> Iterator[str]:
    body = json.dumps({"keys": [signing_key.as_dict(private=False)]}).encode()

    class Jwks(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Jwks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    server.shutdown()


@pytest.fixture()
def web(jwks_url: str) -> TestClient:
    codec = codec_from_key_ring(f"k1:{generate_key()}")
    verifier = OidcVerifier(ISSUER, AUDIENCE, jwks_url)
    return TestClient(codec_app(codec, STATIC, [UI], verifier=verifier))


def token(key: RSAKey, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "operator@example.test", "exp": now + 300}
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode({"alg": "RS256", "kid": "k1"}, body, key)


def decode(web: TestClient, bearer: str) -> int:
    answer = web.post(
        "/decode",
        json={"payloads": []},
        headers={"Authorization": f"Bearer {bearer}", "Origin": UI},
    )
    return answer.status_code


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_valid_access_token_is_accepted(web: TestClient, signing_key: RSAKey) -> None:
    assert decode(web, token(signing_key)) == 200


def test_static_cli_token_still_works(web: TestClient) -> None:
    assert decode(web, STATIC) == 200


def test_expired_token_is_refused(web: TestClient, signing_key: RSAKey) -> None:
    assert decode(web, token(signing_key, exp=int(time.time()) - 3600)) == 401


def test_token_without_expiry_is_refused(web: TestClient, signing_key: RSAKey) -> None:
    assert decode(web, token(signing_key, exp=None)) == 401


def test_wrong_audience_is_refused(web: TestClient, signing_key: RSAKey) -> None:
    assert decode(web, token(signing_key, aud="some-other-app")) == 401


def test_wrong_issuer_is_refused(web: TestClient, signing_key: RSAKey) -> None:
    assert decode(web, token(signing_key, iss="https://evil.example.test/")) == 401


def test_unsigned_alg_none_token_is_refused(web: TestClient) -> None:
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": int(time.time()) + 300}
    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."
    assert decode(web, unsigned) == 401


def test_token_signed_by_another_key_is_refused(web: TestClient) -> None:
    stranger = RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)
    assert decode(web, token(stranger)) == 401


def test_tampered_claims_are_refused(web: TestClient, signing_key: RSAKey) -> None:
    header, _, signature = token(signing_key).split(".")
    forged = {"iss": ISSUER, "aud": AUDIENCE, "sub": "admin", "exp": int(time.time()) + 300}
    assert decode(web, f"{header}.{b64(forged)}.{signature}") == 401
