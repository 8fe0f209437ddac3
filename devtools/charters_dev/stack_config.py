"""What every child process of the local stack is configured with: the settings as `CHARTERS_*`
variables, the local key ring and codec token, and the 0600 files that keep them."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from pydantic import SecretStr

from charters.codec import generate_key
from charters.settings import Settings


def settings_env(settings: Settings) -> dict[str, str]:
    """The settings as `CHARTERS_*` variables, so every child sees exactly the same config."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, bool):
            value = str(value).lower()
        elif isinstance(value, list | dict):
            value = json.dumps(value)
        env[f"CHARTERS_{name.upper()}"] = str(value)
    return env


def with_codec(settings: Settings) -> Settings:
    """The local stack encrypts history too: a key ring and token kept under the state dir, so
    the SQLite history stays readable across restarts."""
    if settings.codec_keys is not None:
        return settings
    path = settings.state_dir.resolve() / "codec.json"
    if path.exists():
        saved = json.loads(path.read_text())
    else:
        saved = {"keys": f"local-1:{generate_key()}", "token": secrets.token_urlsafe(32)}
        write_private(path, json.dumps(saved))
    return settings.model_copy(
        update={
            "codec_keys": SecretStr(saved["keys"]),
            "codec_auth_token": SecretStr(saved["token"]),
            "codec_trust_ui_origin": True,
        }
    )


def write_private(path: Path, text: str) -> None:
    """Writes a file only its owner can read, created 0600 (never world-readable, not even
    between create and chmod): the stack's files hold the key ring and the codec token."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(tmp, 0o600)
    tmp.replace(path)
