"""The codec server accepts the Web UI's OIDC access token only when it is valid: signed by a key
of the identity provider's JWKS (served here over HTTP, key made here), right issuer and audience,
not expired, and never with `alg: none`; and only for allow-listed users or groups (403 and a log
line otherwise). The JWKS URL is found from the issuer's discovery document when not set."""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
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


OPERATOR = "operator@example.test"


@pytest.fixture()
def web(jwks_url: str) -> TestClient:
    return client(OidcVerifier(ISSUER, AUDIENCE, jwks_url, allowed=[OPERATOR]))


def client(verifier: OidcVerifier) -> TestClient:
    codec = codec_from_key_ring(f"k1:{generate_key()}")
    return TestClient(codec_app(codec, STATIC, [UI], verifier=verifier))


def token(key: RSAKey, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "auth0|123", "exp": now + 300, "email": OPERATOR}
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


# ---- authorization: who, not only "a valid token" --------------------------------------------


def test_a_valid_token_of_someone_not_allowed_is_forbidden_and_logged(
    web: TestClient, signing_key: RSAKey, caplog: pytest.LogCaptureFixture
) -> None:
    """Temporal Cloud's UI: every Cloud user anywhere has a token with this issuer and audience."""
    caplog.set_level(logging.WARNING, logger="charters.web.oidc")
    answer = web.post(
        "/decode",
        json={"payloads": []},
        headers={"Authorization": f"Bearer {token(signing_key, email='stranger@elsewhere.test')}"},
    )
    assert answer.status_code == 403
    assert answer.headers["Cache-Control"] == "no-store"
    assert "payloads" not in answer.json()
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert refused == [
        "codec server: refused sub=auth0|123 email=stranger@elsewhere.test: "
        "not in CHARTERS_CODEC_ALLOWED_PRINCIPALS"
    ]


def test_a_token_without_the_claim_is_forbidden(web: TestClient, signing_key: RSAKey) -> None:
    assert decode(web, token(signing_key, email=None)) == 403


def test_group_claim_list_admits_a_member(jwks_url: str, signing_key: RSAKey) -> None:
    """Okta `groups`, Entra `groups`/`roles`: a list; one allow-listed group is enough."""
    web = client(OidcVerifier(ISSUER, AUDIENCE, jwks_url, claim="groups", allowed=["charters-ops"]))
    assert decode(web, token(signing_key, groups=["everyone", "charters-ops"])) == 200
    assert decode(web, token(signing_key, groups=["everyone"])) == 403
    assert decode(web, token(signing_key, groups="charters-ops")) == 200
    assert decode(web, token(signing_key, groups=[{"not": "a string"}])) == 403


def test_an_empty_allow_list_admits_no_token(jwks_url: str, signing_key: RSAKey) -> None:
    web = client(OidcVerifier(ISSUER, AUDIENCE, jwks_url))
    assert decode(web, token(signing_key)) == 403
    assert decode(web, STATIC) == 200  # the CLI's static token is not an OIDC principal


def test_forbidden_is_not_unauthenticated(web: TestClient, signing_key: RSAKey) -> None:
    """A bad token stays 401 whatever its claims say; only an authentic one can be a 403."""
    stranger = RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)
    assert decode(web, token(stranger, email="stranger@elsewhere.test")) == 401


# ---- the JWKS from the issuer's discovery document ------------------------------------------


def serve(routes: dict[str, Any]) -> tuple[ThreadingHTTPServer, str]:
    """A tiny identity provider: path -> JSON body (absent paths answer 404)."""

    class Provider(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            found = routes.get(self.path)
            self.send_response(200 if found is not None else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps(found if found is not None else {}).encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Provider)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def test_jwks_url_found_from_the_issuers_discovery_document(signing_key: RSAKey) -> None:
    routes: dict[str, Any] = {"/keys": {"keys": [signing_key.as_dict(private=False)]}}
    server, base = serve(routes)
    try:
        issuer = base + "/"
        routes["/.well-known/openid-configuration"] = {"issuer": issuer, "jwks_uri": base + "/keys"}
        verifier = OidcVerifier(issuer, AUDIENCE, None, allowed=[OPERATOR])
        assert decode(client(verifier), token(signing_key, iss=issuer)) == 200
        assert verifier.jwks_url == base + "/keys"
    finally:
        server.shutdown()


@pytest.mark.parametrize("problem", ["missing", "other-issuer", "no-jwks-uri"])
def test_a_broken_discovery_document_refuses_with_a_log_line(
    signing_key: RSAKey, caplog: pytest.LogCaptureFixture, problem: str
) -> None:
    routes: dict[str, Any] = {"/keys": {"keys": [signing_key.as_dict(private=False)]}}
    server, base = serve(routes)
    try:
        issuer = base + "/"
        if problem == "other-issuer":
            routes["/.well-known/openid-configuration"] = {
                "issuer": "https://evil.example.test/",
                "jwks_uri": base + "/keys",
            }
        elif problem == "no-jwks-uri":
            routes["/.well-known/openid-configuration"] = {"issuer": issuer}
        caplog.set_level(logging.WARNING, logger="charters.web.oidc")
        web = client(OidcVerifier(issuer, AUDIENCE, None, allowed=[OPERATOR]))
        assert decode(web, token(signing_key, iss=issuer)) == 401
        assert any("discovery failed" in r.getMessage() for r in caplog.records)
    finally:
        server.shutdown()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CHARTERS_CODEC_OIDC_AUDIENCE": ""}, "set CHARTERS_CODEC_OIDC_AUDIENCE"),
        ({"CHARTERS_CODEC_ALLOWED_PRINCIPALS": "[]"}, "set CHARTERS_CODEC_ALLOWED_PRINCIPALS"),
        ({"CHARTERS_CODEC_ALLOWED_PRINCIPALS": "ops@example.test"}, "list settings are JSON"),
    ],
)
def test_codec_server_misconfiguration_is_one_line(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    """No JWKS URL is fine (discovery); a missing audience or allow-list is one line, no
    traceback, before anything listens."""
    for var in [v for v in os.environ if v.startswith("CHARTERS_")]:
        monkeypatch.delenv(var)
    base = {
        "CHARTERS_PROFILE": "aws",
        "CHARTERS_CODEC_KEYS": f"k1:{generate_key()}",
        "CHARTERS_CODEC_AUTH_TOKEN": STATIC,
        "CHARTERS_CODEC_OIDC_ISSUER": ISSUER,
        "CHARTERS_CODEC_OIDC_AUDIENCE": AUDIENCE,
        "CHARTERS_CODEC_ALLOWED_PRINCIPALS": json.dumps([OPERATOR]),
    }
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "charters"), "codec-server"],
        env={**os.environ, **base, **env, "CHARTERS_CODEC_PORT": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2, proc.stderr
    assert len(errors) == 1 and message in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
