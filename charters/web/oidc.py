"""Verifies the Temporal Web UI's OIDC access token for the codec server.

With `TEMPORAL_CODEC_PASS_ACCESS_TOKEN=true` the UI sends `Authorization: Bearer <its access
token>` to the codec endpoint (it cannot send a static token). The token is accepted only when
its signature checks against the identity provider's JWKS with an asymmetric algorithm (never
`none`, never HMAC with a public key), and `iss`, `aud` and `exp` are present and right.

joserfc (pinned in pyproject.toml) does the JOSE work: maintained by Authlib's author, typed,
RFC-strict, and `none` is not an algorithm it will verify with unless asked by name; the JWKS is
fetched with httpx (already a dependency), cached, and refetched when a token names an unknown
`kid` (key rotation), at most once a minute.
"""

from __future__ import annotations

import asyncio
import logging
import time
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


class OidcVerifier:
    def __init__(self, issuer: str, audience: str, jwks_url: str, timeout: float = 5.0) -> None:
        if not (issuer and audience and jwks_url):
            raise ValueError("OIDC verification needs an issuer, an audience and a JWKS URL")
        self.issuer = issuer
        self.audience = audience
        self.jwks_url = jwks_url
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

    async def _key_set(self, refresh: bool) -> KeySet:
        async with self._lock:
            stale = time.monotonic() - self._fetched_at > REFETCH_AFTER_SECONDS
            if self._keys is None or (refresh and stale):
                async with httpx.AsyncClient(timeout=self._timeout) as http:
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
        except (JoseError, ValueError, httpx.HTTPError) as exc:
            log.info("codec server: access token refused: %s", type(exc).__name__)
            return None
        return dict(decoded.claims)


def oidc_verifier(settings: Settings) -> OidcVerifier | None:
    """The verifier the settings describe; None when no issuer is set (CLI static token only)."""
    if not settings.codec_oidc_issuer:
        return None
    return OidcVerifier(
        settings.codec_oidc_issuer,
        settings.codec_oidc_audience or "",
        settings.codec_oidc_jwks_url or "",
    )
