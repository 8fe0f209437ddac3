"""Reads secrets from AWS Secrets Manager inside activities, so they never enter history."""

from __future__ import annotations

import threading
import time
from typing import Any

from charters.aws_errors import aws_errors

FIXES = {
    "ResourceNotFound": "create the secret (see docs/production.md for its format), or set the "
    "CHARTERS_SECRET_* setting naming it",
    "AccessDenied": "grant the worker's role secretsmanager:GetSecretValue on the secret (and "
    "kms:Decrypt on its key)",
    "DecryptionFailure": "grant the worker's role kms:Decrypt on the secret's KMS key",
}
DEFAULT_FIX = "check the CHARTERS_SECRET_* settings and the worker's Secrets Manager permissions"


class SecretReader:
    """Caches each secret briefly: rotation is picked up within `ttl_seconds`."""

    def __init__(self, secretsmanager: Any, ttl_seconds: float = 30.0) -> None:
        self._client = secretsmanager
        self._ttl = ttl_seconds
        self._cache: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def get(self, secret_id: str) -> str:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(secret_id)
            if hit and now - hit[0] < self._ttl:
                return hit[1]
        with aws_errors("Secrets Manager", FIXES, DEFAULT_FIX, subject=secret_id):
            value = str(self._client.get_secret_value(SecretId=secret_id)["SecretString"])
        with self._lock:
            self._cache[secret_id] = (now, value)
        return value

    def get_with_previous(self, secret_id: str, fresh: bool = False) -> list[str]:
        """The secret's AWSCURRENT value, then its AWSPREVIOUS one when there is one: what a
        verifier accepts during a rotation's overlap (signers use `get`, i.e. AWSCURRENT only).
        `fresh` skips the cache (a token that matched neither may be signed with a value this
        process has not seen yet)."""
        cache_key = f"{secret_id}#with-previous"
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(cache_key)
            if hit and not fresh and now - hit[0] < self._ttl:
                return hit[1].split("\x00")
        with aws_errors("Secrets Manager", FIXES, DEFAULT_FIX, subject=secret_id):
            values = [str(self._client.get_secret_value(SecretId=secret_id)["SecretString"])]
            try:
                previous = self._client.get_secret_value(
                    SecretId=secret_id, VersionStage="AWSPREVIOUS"
                )
                values.append(str(previous["SecretString"]))
            except self._client.exceptions.ResourceNotFoundException:
                pass  # never rotated: no previous version
        with self._lock:
            self._cache[cache_key] = (now, "\x00".join(values))
        return values
