"""Connects to Temporal with the data converter every part of the product shares: pydantic
payloads, encrypted by the AES-GCM codec when a key ring is configured, failures included."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.service import TLSConfig

from charters.codec import codec_from_key_ring, data_converter
from charters.settings import Settings


def converter(settings: Settings) -> DataConverter:
    ring = settings.codec_keys.get_secret_value() if settings.codec_keys else ""
    if not ring.strip():
        if settings.profile == "aws":
            raise RuntimeError(
                "CHARTERS_CODEC_KEYS must be set for profile=aws (payload encryption)"
            )
        return data_converter(None)
    return data_converter(codec_from_key_ring(ring))


def tls_config(settings: Settings) -> TLSConfig | bool:
    """TLS for a secured cluster: system roots or a private CA, a client certificate for mTLS
    (Temporal Cloud's certificate auth). An API key needs TLS too (Temporal Cloud's API-key
    auth); False (plaintext) only when nothing asks for it, e.g. the local dev server."""
    files = (
        settings.temporal_tls_ca_file,
        settings.temporal_tls_cert_file,
        settings.temporal_tls_key_file,
    )
    if (settings.temporal_tls_cert_file is None) != (settings.temporal_tls_key_file is None):
        raise RuntimeError(
            "mTLS needs both CHARTERS_TEMPORAL_TLS_CERT_FILE and CHARTERS_TEMPORAL_TLS_KEY_FILE"
        )
    wanted = settings.temporal_tls or settings.temporal_api_key is not None
    if not wanted and not any(files) and settings.temporal_tls_server_name is None:
        return False
    ca, cert, key = (path.read_bytes() if path else None for path in files)
    return TLSConfig(
        server_root_ca_cert=ca,
        client_cert=cert,
        client_private_key=key,
        domain=settings.temporal_tls_server_name,
    )


def connect_options(settings: Settings) -> dict[str, Any]:
    """What every process passes to `Client.connect`: namespace, converter, TLS, API key."""
    api_key = settings.temporal_api_key
    return {
        "namespace": settings.temporal_namespace,
        "data_converter": converter(settings),
        "tls": tls_config(settings),
        "api_key": api_key.get_secret_value() if api_key else None,
    }


async def connect(settings: Settings, **extra: Any) -> Client:
    return await Client.connect(settings.temporal_address, **connect_options(settings), **extra)
