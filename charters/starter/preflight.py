"""`charters ops preflight`: can every process read the secret files compose mounts for it?

Compose file secrets are bind mounts, so inside the container the HOST file's owner and mode
apply (`uid`/`gid`/`mode` on a file secret are ignored by Docker Compose: docs.docker.com,
Compose file reference, services, `secrets` long syntax). A 0600 file owned by the operator is
unreadable by the charters image's uid 10001 and by Temporal's uid 1000: every container then
crash-loops on its first read. This check reads docker-compose.yml, takes each service's `user:`
(a service without one is taken to start as root, as the postgres image's entrypoint does) and
each secret's host file, and names every file a reader cannot read, is missing or empty, or that
any user of the host can read, with the `chown`/`chmod` that fixes it (the secret's `x-owner`
and `x-mode`).

Root inside the container is assumed to read anything (rootful Docker, no user namespace
remapping); with userns-remap or rootless Docker the uids shift and this check does not apply.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

StatFn = Callable[[Path], os.stat_result]


@dataclass(frozen=True)
class Reader:
    service: str
    uid: int
    gid: int

    @property
    def who(self) -> str:
        return f"{self.service} (runs as {self.uid}:{self.gid})"


def parse_user(user: Any) -> tuple[int, int]:
    """`user:` of a service as numbers; none given is root. Names cannot be resolved here."""
    if user is None:
        return 0, 0
    uid_text, _, gid_text = str(user).partition(":")
    if not uid_text.isdigit() or (gid_text and not gid_text.isdigit()):
        raise ValueError(f"user {user!r} must be numeric uid[:gid] for the check to be exact")
    uid = int(uid_text)
    return uid, int(gid_text) if gid_text else uid


def can_read(st: os.stat_result, uid: int, gid: int) -> bool:
    if uid == 0:
        return True
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IRUSR)
    if st.st_gid == gid:
        return bool(st.st_mode & stat.S_IRGRP)
    return bool(st.st_mode & stat.S_IROTH)


def secret_readers(compose: dict[str, Any]) -> dict[str, list[Reader]]:
    """Secret name -> the services that mount it, with the user each runs as."""
    readers: dict[str, list[Reader]] = {name: [] for name in compose.get("secrets") or {}}
    for service, spec in (compose.get("services") or {}).items():
        uid, gid = parse_user(spec.get("user"))
        for entry in spec.get("secrets") or []:
            name = entry if isinstance(entry, str) else entry.get("source")
            readers.setdefault(str(name), []).append(Reader(service, uid, gid))
    return readers


class _ComposeLoader(yaml.SafeLoader):
    """Compose YAML, with its merge tags (`!reset`, `!override`) read as plain values."""


def _untagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_ComposeLoader.add_multi_constructor("!", _untagged)


def load_compose(files: list[Path]) -> dict[str, Any]:
    """The files merged as `docker compose -f a -f b` does, as far as secrets go: secret
    definitions, each service's `user` and its `secrets` (a later file's list replaces)."""
    merged: dict[str, Any] = {"secrets": {}, "services": {}}
    for path in files:
        data = yaml.load(path.read_text(), Loader=_ComposeLoader)  # noqa: S506 - SafeLoader
        for name, spec in (data.get("secrets") or {}).items():
            merged["secrets"][name] = {**spec, "file": str(path.parent / spec["file"])}
        for name, spec in (data.get("services") or {}).items():
            into = merged["services"].setdefault(name, {})
            for key in ("user", "secrets", "profiles"):
                if key in spec:
                    into[key] = spec[key]
    return merged


def check(compose_file: Path | list[Path], stat_fn: StatFn = os.stat) -> list[str]:
    """One line per problem; empty when every secret file is fit for its readers. Several
    files are merged as compose merges them (`-f docker-compose.yml -f docker-compose.cloud.yml`);
    services in a profile are taken as not started."""
    files = compose_file if isinstance(compose_file, list) else [compose_file]
    compose = load_compose(files)
    compose["services"] = {
        name: spec for name, spec in compose["services"].items() if not spec.get("profiles")
    }
    base = Path.cwd()
    declared = compose.get("secrets") or {}
    problems: list[str] = []
    for name, readers in secret_readers(compose).items():
        if not readers:
            continue  # declared, but no service that starts mounts it
        spec = declared.get(name)
        if spec is None:
            problems.append(f"secret {name}: used by {readers[0].service} but not declared")
            continue
        if "file" not in spec:
            continue  # environment or external secrets: not a host file
        path = (base / spec["file"]).resolve()  # absolute: load_compose joined the file's dir
        shown = os.path.relpath(path, Path.cwd())
        owner, mode = str(spec.get("x-owner", "")), str(spec.get("x-mode", "0400"))
        fix = f"chown {owner} {shown} && chmod {mode} {shown}" if owner else f"chmod {mode} {shown}"
        try:
            st = stat_fn(path)
        except FileNotFoundError:
            problems.append(f"{shown}: missing (secret {name}); create it, then {fix}")
            continue
        except PermissionError:
            problems.append(f"{shown}: cannot be examined by this user; run the check with sudo")
            continue
        if not stat.S_ISREG(st.st_mode):
            problems.append(f"{shown}: not a regular file (secret {name})")
            continue
        blocked = [r.who for r in readers if not can_read(st, r.uid, r.gid)]
        if blocked:
            problems.append(
                f"{shown}: {', '.join(blocked)} cannot read it (owner {st.st_uid}:{st.st_gid}, "
                f"mode {stat.S_IMODE(st.st_mode):04o}); {fix}"
            )
        if st.st_mode & stat.S_IROTH:
            problems.append(
                f"{shown}: readable by every user of the host (mode "
                f"{stat.S_IMODE(st.st_mode):04o}); {fix}"
            )
        if st.st_size == 0:
            problems.append(f"{shown}: empty (secret {name})")
    return problems
