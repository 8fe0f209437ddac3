"""HMAC-signed, expiring magic-link tokens bound to one workflow and one crew member."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime


class InvalidToken(Exception):
    """The token is malformed, tampered with, or expired; the message says which."""


class ExpiredToken(InvalidToken):
    """The token is genuine but past its expiry: a new link is what the person needs."""


@dataclass(frozen=True)
class MagicLink:
    workflow_id: str
    crew_id: str
    expires_at: int
    round: int = 1


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    """Strict: only the one spelling `_b64` produces. The lenient decoder would also take `+`/`/`,
    stray characters and other values of the last character's unused bits, so several tokens
    would verify as the same link."""
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(data) != text:
        raise ValueError("not canonical base64url")
    return data


def sign(key: bytes, link: MagicLink) -> str:
    payload = json.dumps(
        {"w": link.workflow_id, "c": link.crew_id, "x": link.expires_at, "r": link.round},
        separators=(",", ":"),
    ).encode()
    mac = hmac.new(key, payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(mac)}"


def verify(key: bytes, token: str, now: datetime) -> MagicLink:
    try:
        payload_text, mac_text = token.split(".", 1)
        payload, mac = _unb64(payload_text), _unb64(mac_text)
    except ValueError as exc:
        raise InvalidToken("malformed link") from exc
    if not hmac.compare_digest(mac, hmac.new(key, payload, hashlib.sha256).digest()):
        raise InvalidToken("this link is not valid")
    try:
        fields = json.loads(payload)
        link = MagicLink(
            str(fields["w"]), str(fields["c"]), int(fields["x"]), int(fields.get("r", 1))
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidToken("malformed link") from exc
    if now.timestamp() >= link.expires_at:
        raise ExpiredToken("this link has expired")
    return link


def verify_any(keys: list[bytes], token: str, now: datetime) -> MagicLink:
    """`verify` with each key of a rotation's overlap (current first): a link signed with the
    previous key keeps working until the key after it replaces that one."""
    if not keys:
        raise InvalidToken("this link is not valid")
    last: InvalidToken | None = None
    for key in keys:
        try:
            return verify(key, token, now)
        except ExpiredToken:
            raise  # genuine under this key: its age is the answer
        except InvalidToken as exc:
            last = exc
    assert last is not None
    raise last


SHORT_MAC_BYTES = 12
"""96 bits of HMAC: no forgery by guessing within any rate limit, and the code stays short."""
SHORT_DOMAIN = b"short-link\x00"
"""Domain separation: a short code's MAC is never a full token's MAC over the same bytes."""


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, rest = divmod(number, 36)
        text = digits[rest] + text
        if not number:
            return text


def short_code(key: bytes, link: MagicLink) -> str:
    """The same magic link, compact enough for an SMS: `workflow~crew~expiry~round` (expiry in
    base 36) and a truncated HMAC, base64url. Stateless: the confirmation server verifies it
    with the magic-link key and opens the full link's page, so both answer alike."""
    for part in (link.workflow_id, link.crew_id):
        if "~" in part:
            raise ValueError(f"{part!r}: '~' cannot appear in a short link")
    payload = f"{link.workflow_id}~{link.crew_id}~{_base36(link.expires_at)}~{link.round}"
    mac = hmac.new(key, SHORT_DOMAIN + payload.encode(), hashlib.sha256).digest()
    return f"{_b64(payload.encode())}.{_b64(mac[:SHORT_MAC_BYTES])}"


def verify_short(key: bytes, code: str, now: datetime) -> MagicLink:
    """The magic link a short code stands for; InvalidToken or ExpiredToken as `verify`."""
    try:
        payload_text, mac_text = code.split(".", 1)
        payload, mac = _unb64(payload_text), _unb64(mac_text)
    except ValueError as exc:
        raise InvalidToken("malformed link") from exc
    expected = hmac.new(key, SHORT_DOMAIN + payload, hashlib.sha256).digest()[:SHORT_MAC_BYTES]
    if not hmac.compare_digest(mac, expected):
        raise InvalidToken("this link is not valid")
    try:
        workflow_id, crew_id, expiry, round_ = payload.decode().split("~")
        link = MagicLink(workflow_id, crew_id, int(expiry, 36), int(round_))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidToken("malformed link") from exc
    if now.timestamp() >= link.expires_at:
        raise ExpiredToken("this link has expired")
    return link


def verify_short_any(keys: list[bytes], code: str, now: datetime) -> tuple[MagicLink, bytes]:
    """`verify_short` with each key of a rotation's overlap (current first); also the key that
    verified it, which signs the full link the code stands for."""
    if not keys:
        raise InvalidToken("this link is not valid")
    last: InvalidToken | None = None
    for key in keys:
        try:
            return verify_short(key, code, now), key
        except ExpiredToken:
            raise
        except InvalidToken as exc:
            last = exc
    assert last is not None
    raise last
