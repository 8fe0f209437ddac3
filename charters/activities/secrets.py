"""Reads secrets from AWS Secrets Manager inside activities, so they never enter history."""

from __future__ import annotations

import threading
import time
from typing import Any


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
        value = str(self._client.get_secret_value(SecretId=secret_id)["SecretString"])
        with self._lock:
            self._cache[secret_id] = (now, value)
        return value
