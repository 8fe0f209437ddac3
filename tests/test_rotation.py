"""The two key rotations of docs/production.md ("Rotate keys"), played locally.

Payload codec key ring (the `codec_keys` secret file of every process): phase 1 adds the new key
at the END of the ring (every process can read it, none writes with it), phase 2, once every
process runs phase 1's ring, moves it first (active). A fleet mixing two adjacent phases reads
everything any of its members writes; skipping phase 1 would leave a process that cannot read
what its neighbour just wrote (a workflow task failure, then a stuck booking).

Magic-link key (Secrets Manager `charters/magic-link-hmac-key`): `put-secret-value` makes the new
value AWSCURRENT and the old one AWSPREVIOUS. The worker signs with AWSCURRENT; the confirm
endpoint accepts AWSCURRENT or AWSPREVIOUS, so links already mailed keep working through the
overlap, which lasts until the next rotation (hence: rotate at most once per link lifetime).
Secrets Manager is moto here (its staging labels are what the procedure relies on).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws
from temporalio.api.common.v1 import Payload

from charters import magic_links
from charters.activities.secrets import SecretReader
from charters.codec import codec_from_key_ring, generate_key

OLD, NEW = f"2026-05:{generate_key()}", f"2026-11:{generate_key()}"
BEFORE = OLD  # the ring in service
PHASE_1 = f"{OLD},{NEW}"  # new key known everywhere, old still active
PHASE_2 = f"{NEW},{OLD}"  # new key active, old still readable
AFTER = NEW  # once nothing retained needs the old key


def payload(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=text.encode())


async def roundtrip(writer: str, reader: str) -> bool:
    (sealed,) = await codec_from_key_ring(writer).encode([payload("guest: Ana")])
    try:
        (opened,) = await codec_from_key_ring(reader).decode([sealed])
    except ValueError:
        return False
    return opened.data == b"guest: Ana"


@pytest.mark.parametrize(
    ("writer", "reader"),
    [
        (BEFORE, PHASE_1),
        (PHASE_1, BEFORE),  # phase 1 rolling out: old and new rings side by side
        (PHASE_1, PHASE_2),
        (PHASE_2, PHASE_1),  # phase 2 rolling out
        (BEFORE, PHASE_2),  # history written before the rotation, read after it
    ],
    ids=["before-phase1", "phase1-before", "phase1-phase2", "phase2-phase1", "before-phase2"],
)
async def test_adjacent_phases_read_each_other(writer: str, reader: str) -> None:
    assert await roundtrip(writer, reader)


async def test_why_two_phases_a_new_active_key_is_unreadable_by_the_old_ring() -> None:
    assert not await roundtrip(PHASE_2, BEFORE)  # skipping phase 1 breaks the old processes
    assert not await roundtrip(BEFORE, AFTER)  # dropping the old key too early loses history


def test_codec_key_ids_are_the_ring_order() -> None:
    assert codec_from_key_ring(PHASE_1).active_key_id == "2026-05"
    assert codec_from_key_ring(PHASE_2).active_key_id == "2026-11"


@pytest.fixture()
def secretsmanager() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client(
            "secretsmanager",
            region_name="us-west-2",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        client.create_secret(Name="charters/magic-link-hmac-key", SecretString="key-one" * 8)
        yield client


SECRET = "charters/magic-link-hmac-key"


def link_signed_now(reader: SecretReader, crew: str) -> str:
    """What the worker's crew email does: sign with AWSCURRENT."""
    key = reader.get(SECRET).encode()
    link = magic_links.MagicLink("charter-ROT1", crew, int(datetime.now(UTC).timestamp()) + 3600)
    return magic_links.sign(key, link)


def confirm_accepts(reader: SecretReader, token: str) -> bool:
    """What the confirm endpoint does: AWSCURRENT, then AWSPREVIOUS."""
    keys = [k.encode() for k in reader.get_with_previous(SECRET, fresh=True)]
    try:
        magic_links.verify_any(keys, token, datetime.now(UTC))
    except magic_links.InvalidToken:
        return False
    return True


def test_magic_links_survive_one_rotation(secretsmanager: Any) -> None:
    reader = SecretReader(secretsmanager, ttl_seconds=0)
    mailed_before = link_signed_now(reader, "c1")
    assert reader.get_with_previous(SECRET) == ["key-one" * 8]  # never rotated: one key

    secretsmanager.put_secret_value(SecretId=SECRET, SecretString="key-two" * 8)
    mailed_after = link_signed_now(reader, "c2")
    assert confirm_accepts(reader, mailed_before)  # the overlap
    assert confirm_accepts(reader, mailed_after)

    secretsmanager.put_secret_value(SecretId=SECRET, SecretString="key-three" * 8)
    assert not confirm_accepts(reader, mailed_before)  # two rotations: its key is gone
    assert confirm_accepts(reader, mailed_after)


def test_a_stale_cache_is_refreshed_for_a_link_signed_with_the_new_key(
    secretsmanager: Any,
) -> None:
    signer = SecretReader(secretsmanager, ttl_seconds=0)
    verifier = SecretReader(secretsmanager, ttl_seconds=3600)
    assert verifier.get_with_previous(SECRET) == ["key-one" * 8]  # cached before the rotation
    secretsmanager.put_secret_value(SecretId=SECRET, SecretString="key-two" * 8)
    new_link = link_signed_now(signer, "c3")
    cached = [k.encode() for k in verifier.get_with_previous(SECRET)]
    with pytest.raises(magic_links.InvalidToken):
        magic_links.verify_any(cached, new_link, datetime.now(UTC))
    assert confirm_accepts(verifier, new_link)  # the fresh read the endpoint makes once


def test_an_expired_link_stays_expired_under_any_key(secretsmanager: Any) -> None:
    key = b"key-one" * 8
    old = magic_links.sign(key, magic_links.MagicLink("charter-ROT1", "c1", 1))
    with pytest.raises(magic_links.ExpiredToken):
        magic_links.verify_any([b"other" * 8, key], old, datetime.now(UTC))
