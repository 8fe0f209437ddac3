"""Encrypts every payload Temporal stores: inputs, results, memos, heartbeats and failures.

`AesGcmCodec` seals the whole serialized `Payload` (metadata included, so the server does not
even learn the encoding) with AES-256-GCM. The stored payload carries only

    metadata: {"encoding": b"binary/encrypted", "encryption-key-id": b"<kid>"}
    data:     12-byte random nonce || ciphertext || 16-byte GCM tag

The key id is also bound into the GCM associated data, so relabelling a payload with another
key id fails authentication instead of decrypting under the wrong key.

Key rotation: a key ring holds several keys; new payloads are sealed with the *active* key and
old ones are opened with whichever key their metadata names. To rotate, put a new key first in
the ring and keep the old ones until no open workflow (or retained history) still needs them.

Failures: `data_converter()` installs `DefaultFailureConverterWithEncodedAttributes`, which moves
a failure's message and stack trace into `encoded_attributes`, a payload the codec encrypts; the
server only sees the message "Encoded failure". Not encrypted, by Temporal's design: workflow
ids, activity/workflow type names, task queues and search attributes, so none of them may carry
guest PII or money amounts.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import re
from collections.abc import Mapping, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
KEY_BYTES = 32
NONCE_BYTES = 12
_AAD_PREFIX = b"charters/payload-codec/v1:"
# Shorter than a base64 key (44 chars), so a key pasted into the id slot is rejected, not echoed.
_KEY_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,32}$")


class AesGcmCodec(PayloadCodec):
    """AES-256-GCM payload codec with a key ring (key id -> 32-byte key) and one active key."""

    def __init__(self, keys: Mapping[str, bytes], active_key_id: str) -> None:
        if not keys:
            raise ValueError("codec key ring is empty")
        for key_id, key in keys.items():
            _check_key_id(key_id)
            if len(key) != KEY_BYTES:
                raise ValueError(
                    f"codec key {key_id!r} is {len(key)} bytes; AES-256 needs {KEY_BYTES}"
                )
        if active_key_id not in keys:
            raise ValueError(f"active codec key id {active_key_id!r} is not in the key ring")
        self._ciphers = {key_id: AESGCM(bytes(key)) for key_id, key in keys.items()}
        self._active_key_id = active_key_id

    @property
    def active_key_id(self) -> str:
        return self._active_key_id

    @property
    def key_ids(self) -> list[str]:
        return list(self._ciphers)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        key_id = self._active_key_id
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[key_id].encrypt(nonce, payload.SerializeToString(), _aad(key_id))
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID_METADATA: key_id.encode()},
            data=nonce + sealed,
        )

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload  # written before encryption was on, or by a codec-less client
        raw_key_id = payload.metadata.get(KEY_ID_METADATA)
        if raw_key_id is None:
            raise ValueError(f"encrypted payload has no {KEY_ID_METADATA!r} metadata")
        key_id = raw_key_id.decode("utf-8", errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise ValueError(
                f"payload was encrypted with codec key id {key_id!r}, which is not in the "
                f"key ring (known: {', '.join(sorted(self._ciphers))})"
            )
        data = payload.data
        if len(data) < NONCE_BYTES + 16:
            raise ValueError(f"encrypted payload (key id {key_id!r}) is truncated")
        try:
            plain = cipher.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], _aad(key_id))
        except InvalidTag:
            raise ValueError(
                f"encrypted payload failed authentication with codec key id {key_id!r} "
                "(tampered, truncated, or the key under that id changed)"
            ) from None
        return Payload.FromString(plain)


def data_converter(codec: PayloadCodec | None) -> DataConverter:
    """The product's converter: pydantic values, optional codec, failures moved into payloads."""
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def load_keys(text: str) -> tuple[dict[str, bytes], str]:
    """Parses a key ring `"kid1:base64key,kid2:base64key"`; the FIRST entry is the active key.

    Keys are 32 bytes, standard or URL-safe base64. Errors name the entry, never the key.
    """
    entries = [e.strip() for e in text.split(",") if e.strip()]
    if not entries:
        raise ValueError("codec key ring is empty: expected 'kid:base64key[,kid:base64key...]'")
    keys: dict[str, bytes] = {}
    for position, entry in enumerate(entries, start=1):
        key_id, sep, encoded = (part.strip() for part in entry.partition(":"))
        if not sep:
            raise ValueError(
                f"codec key ring entry {position} has no ':' (expected 'kid:base64key')"
            )
        _check_key_id(key_id, where=f"entry {position}")
        if key_id in keys:
            raise ValueError(f"codec key id {key_id!r} appears more than once in the key ring")
        try:
            key = base64.b64decode(encoded.replace("-", "+").replace("_", "/"), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"codec key {key_id!r} is not valid base64") from None
        if len(key) != KEY_BYTES:
            raise ValueError(
                f"codec key {key_id!r} decodes to {len(key)} bytes; AES-256 needs {KEY_BYTES}"
            )
        keys[key_id] = key
    return keys, next(iter(keys))


def codec_from_key_ring(text: str) -> AesGcmCodec:
    keys, active = load_keys(text)
    return AesGcmCodec(keys, active)


def generate_key() -> str:
    """A fresh random 32-byte key, base64 (for `kid:<this>` in the key ring)."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode("ascii")


def _aad(key_id: str) -> bytes:
    return _AAD_PREFIX + key_id.encode()


def _check_key_id(key_id: str, where: str = "") -> None:
    # The bad id is not echoed: a misplaced key would otherwise end up in logs.
    if not _KEY_ID_RE.match(key_id):
        at = f" ({where})" if where else ""
        raise ValueError(
            f"codec key id{at} must be 1-32 characters of letters, digits, '.', '_', '-'"
        )
