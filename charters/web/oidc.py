"""Verifies the Temporal Web UI's OIDC access token for the codec server, then authorizes it.

With `TEMPORAL_CODEC_PASS_ACCESS_TOKEN=true` the UI sends `Authorization: Bearer <its access
token>` to the codec endpoint (it cannot send a static token). The token is *authentic* only when
its signature checks against the identity provider's JWKS with an asymmetric algorithm (never
`none`, never HMAC with a public key), and `iss`, `aud` and `exp` are present and right.

Authentic is not enough: with Temporal Cloud's UI the tokens come from Temporal's shared issuer,
so every Cloud user anywhere holds one with that audience. Temporal's codec server guide says to
check the user as well; here a configured claim (`CHARTERS_CODEC_AUTHZ_CLAIM`: `email`, or a
group claim such as `groups`/`roles`, a string or a list) must carry one of the allow-listed
values (`CHARTERS_CODEC_ALLOWED_PRINCIPALS`). An empty allow-list admits no token at all.

The JWKS URL, when not configured, is the `jwks_uri` of the issuer's OpenID Connect discovery
document (`{issuer}/.well-known/openid-configuration`, OpenID Connect Discovery 1.0 §4), whose
`issuer` must equal the configured one. It is looked up on first use and a failure is one log
line and a refusal, never a crash of the server.

joserfc (pinned in pyproject.toml) does the JOSE work: maintained by Authlib's author, typed,
RFC-strict, and `none` is not an algorithm it will verify with unless asked by name; the JWKS is
fetched with httpx (already a dependency), cached, and refetched when a token names an unknown
`kid` (key rotation), at most once a minute.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from charters.settings import Settings

log = logging.getLogger(__name__)

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]
REFETCH_AFTER_SECONDS = 60.0
LEEWAY_SECONDS = 30


DISCOVERY_PATH = "/.well-known/openid-configuration"


class DiscoveryError(Exception):
    """The issuer's discovery document is missing, unreadable or names another issuer."""


class OidcVerifier:
    def __init__(
        self,
        issuer: str,
        audience: str,
        jwks_url: str | None = None,
        timeout: float = 5.0,
        claim: str = "email",
        allowed: Sequence[str] = (),
    ) -> None:
        if not issuer:
            raise ValueError("set CHARTERS_CODEC_OIDC_ISSUER (the Web UI's identity provider)")
        if not audience:
            raise ValueError(
                "set CHARTERS_CODEC_OIDC_AUDIENCE (the `aud` of the Web UI's access tokens)"
            )
        if not claim:
            raise ValueError("set CHARTERS_CODEC_AUTHZ_CLAIM (e.g. email or groups)")
        self.issuer = issuer
        self.audience = audience
        self.jwks_url = jwks_url or None
        self.claim = claim
        self.allowed = frozenset(a.strip() for a in allowed if a.strip())
        self._timeout = timeout
        self._keys: KeySet | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()
        self._claims = JWTClaimsRegistry(
            leeway=LEEWAY_SECONDS,
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": audience},
            exp={"essential": True},
        )

    async def _discover(self, http: httpx.AsyncClient) -> str:
        url = self.issuer.rstrip("/") + DISCOVERY_PATH
        try:
            answer = await http.get(url)
            answer.raise_for_status()
            document = answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise DiscoveryError(f"{url}: {type(exc).__name__}") from None
        if not isinstance(document, dict) or not document.get("jwks_uri"):
            raise DiscoveryError(f"{url} names no jwks_uri")
        if str(document.get("issuer", "")).rstrip("/") != self.issuer.rstrip("/"):
            raise DiscoveryError(f"{url} is the document of issuer {document.get('issuer')!r}")
        return str(document["jwks_uri"])

    async def _key_set(self, refresh: bool) -> KeySet:
        async with self._lock:
            stale = time.monotonic() - self._fetched_at > REFETCH_AFTER_SECONDS
            if self._keys is None or (refresh and stale):
                async with httpx.AsyncClient(timeout=self._timeout) as http:
                    if self.jwks_url is None:
                        self.jwks_url = await self._discover(http)
                    answer = await http.get(self.jwks_url)
                    answer.raise_for_status()
                self._keys = KeySet.import_key_set(answer.json())
                self._fetched_at = time.monotonic()
            return self._keys

    async def verify(self, token: str) -> dict[str, Any] | None:
        """The token's claims when it is valid, else None (the reason is logged, not the token)."""
        try:
            keys = await self._key_set(refresh=False)
            try:
                decoded = jwt.decode(token, keys, algorithms=ALGORITHMS)
            except (JoseError, ValueError):
                fresh = await self._key_set(refresh=True)  # a rotated key; at most once a minute
                if fresh is keys:
                    raise
                decoded = jwt.decode(token, fresh, algorithms=ALGORITHMS)
            self._claims.validate(decoded.claims)
        except DiscoveryError as exc:
            log.warning("codec server: access token refused: no JWKS: discovery failed: %s", exc)
            return None
        except (JoseError, ValueError, httpx.HTTPError) as exc:
            log.info("codec server: access token refused: %s", type(exc).__name__)
            return None
        return dict(decoded.claims)

    def principals(self, claims: dict[str, Any]) -> list[str]:
        """The values of the configured claim (a string, or a list of strings)."""
        value = claims.get(self.claim)
        if isinstance(value, str):
            return [value]
        if isinstance(value, list):
            return [v for v in value if isinstance(v, str)]
        return []

    def authorize(self, claims: dict[str, Any]) -> bool:
        """Whether an authentic token's holder may decode; a refusal is logged with who it was
        (subject and the claim's values: operator identities, never guest data or the token)."""
        held = self.principals(claims)
        if self.allowed.intersection(held):
            return True
        log.warning(
            "codec server: refused sub=%s %s=%s: not in CHARTERS_CODEC_ALLOWED_PRINCIPALS",
            claims.get("sub", "?"),
            self.claim,
            ",".join(held) or "(absent)",
        )
        return False


def oidc_verifier(settings: Settings) -> OidcVerifier | None:
    """The verifier the settings describe; None when no issuer is set (CLI static token only).
    A missing audience or claim is a ValueError whose message is the one line to show."""
    if not settings.codec_oidc_issuer:
        return None
    return OidcVerifier(
        settings.codec_oidc_issuer,
        settings.codec_oidc_audience or "",
        settings.codec_oidc_jwks_url or None,
        claim=settings.codec_authz_claim,
        allowed=settings.codec_allowed_principals,
    )
