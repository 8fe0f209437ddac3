"""Connects to Temporal with the data converter every part of the product shares: pydantic
payloads, encrypted by the AES-GCM codec when a key ring is configured, failures included."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.converter import DataConverter

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


async def connect(settings: Settings) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=converter(settings),
    )
