"""What a fault proxy does to the requests it carries: the fault spec (full and compact form)
and one proxy's target."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

FaultKind = Literal["400", "500", "503", "throttle", "reset", "slow", "rejected", "sandbox"]
FAULT_KINDS: tuple[str, ...] = (
    "400",
    "500",
    "503",
    "throttle",
    "reset",
    "slow",
    "rejected",
    "sandbox",
)
ADMIN_PATH = "/__faults"
ADMIN = ADMIN_PATH.encode()


# ---- the fault spec -----------------------------------------------------------------------


# key in the compact form -> FaultSpec field
SPEC_KEYS: dict[str, str] = {
    "delay": "delay_ms",
    "delay_ms": "delay_ms",
    "jitter": "jitter_ms",
    "jitter_ms": "jitter_ms",
    "error": "error_rate",
    "error_rate": "error_rate",
    "rate": "error_rate",
    "kinds": "kinds",
    "kind": "kinds",
    "slow": "slow_ms",
    "slow_ms": "slow_ms",
    "seed": "seed",
    "after": "after_upstream",
    "after_upstream": "after_upstream",
    "match": "match",
}


def _default_kinds() -> list[FaultKind]:
    return ["503"]


class FaultSpec(BaseModel):
    """What a proxy does to the requests it carries. The default spec is a plain pass-through."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    delay_ms: float = Field(0.0, ge=0, description="added to every request")
    jitter_ms: float = Field(0.0, ge=0, description="the delay varies uniformly by ± this")
    error_rate: float = Field(0.0, ge=0, le=1, description="share of requests that get a fault")
    kinds: list[FaultKind] = Field(
        default_factory=_default_kinds,
        min_length=1,
        description="faults to choose from, uniformly",
    )
    slow_ms: float = Field(2000.0, ge=0, description="how long `slow` holds the answer")
    seed: int | None = Field(None, description="for a repeatable sequence of faults")
    after_upstream: bool = Field(
        False,
        description="forward first, then replace the answer with the fault",
    )
    match: str | None = Field(
        None, description="only requests whose body holds this text are faulted (one address)"
    )

    @property
    def active(self) -> bool:
        return bool(self.delay_ms or self.jitter_ms or self.error_rate)

    @classmethod
    def parse(cls, text: str) -> FaultSpec:
        """The compact form used in settings and on the command line:

            spec  := "" | "off" | "none" | item ("," item)*
            item  := key "=" value
            delay, jitter, slow (ms; a number, "50ms" or "1.5s"; long names delay_ms, ...)
            error (a rate 0..1 or a percentage "10%"; also error_rate, rate)
            kinds ("500" | "503" | "throttle" | "reset" | "slow", joined by "|"; also kind)
            after (1/0, true/false, yes/no; also after_upstream)
            seed  (an integer, or "none")

        e.g. `delay=50,jitter=5,error=0.1,kinds=503|throttle|reset,after=1`. Raises ValueError
        naming the offending key."""
        text = text.strip()
        if text.lower() in ("", "off", "none"):
            return cls()
        fields: dict[str, Any] = {}
        used: dict[str, str] = {}  # field -> key as written
        for raw in text.split(","):
            item = raw.strip()
            if not item:
                continue
            key, eq, value = item.partition("=")
            key, value = key.strip().lower(), value.strip()
            if not eq or not key:
                raise ValueError(f"fault spec: {item!r} is not key=value")
            field = SPEC_KEYS.get(key)
            if field is None:
                known = ", ".join(sorted({k for k in SPEC_KEYS if "_" not in k}))
                raise ValueError(f"fault spec: unknown key {key!r} (known keys: {known})")
            if field in used:
                raise ValueError(f"fault spec: key {key!r} given twice")
            used[field] = key
            try:
                fields[field] = _parse_value(field, value)
            except ValueError as e:
                raise ValueError(f"fault spec: bad value for {key!r}: {e}") from None
        try:
            return cls(**fields)
        except ValidationError as e:
            first = e.errors()[0]
            field = str(first["loc"][0]) if first["loc"] else "?"
            key = used.get(field, field)
            raise ValueError(f"fault spec: bad value for {key!r}: {first['msg']}") from None

    def to_text(self) -> str:
        """The compact form (only what differs from the default); parse() inverts it."""
        default = FaultSpec()
        parts: list[str] = []
        for key, field in (
            ("delay", "delay_ms"),
            ("jitter", "jitter_ms"),
            ("error", "error_rate"),
            ("kinds", "kinds"),
            ("slow", "slow_ms"),
            ("seed", "seed"),
            ("after", "after_upstream"),
            ("match", "match"),
        ):
            value = getattr(self, field)
            if value == getattr(default, field):
                continue
            if field == "kinds":
                parts.append(f"kinds={'|'.join(value)}")
            elif field == "after_upstream":
                parts.append(f"after={int(value)}")
            else:
                parts.append(f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}")
        return ",".join(parts) or "off"


def _parse_value(field: str, value: str) -> Any:
    if not value:
        raise ValueError("empty")
    if field in ("delay_ms", "jitter_ms", "slow_ms"):
        v = value.lower()
        if v.endswith("ms"):
            return float(v[:-2])
        if v.endswith("s"):
            return float(v[:-1]) * 1000
        return float(v)
    if field == "error_rate":
        return float(value[:-1]) / 100 if value.endswith("%") else float(value)
    if field == "kinds":
        kinds = [k.strip() for k in value.split("|") if k.strip()]
        bad = [k for k in kinds if k not in FAULT_KINDS]
        if bad:
            raise ValueError(f"unknown kind {bad[0]!r} (kinds: {'|'.join(FAULT_KINDS)})")
        return kinds
    if field == "after_upstream":
        v = value.lower()
        if v in ("1", "true", "yes", "on"):
            return True
        if v in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{value!r} is not a boolean (1/0, true/false)")
    if field == "seed":
        return None if value.lower() == "none" else int(value)
    if field == "match":
        return value
    raise ValueError(f"unknown field {field}")  # pragma: no cover - SPEC_KEYS covers every field


class ProxyTarget(BaseModel):
    """One proxy of several run by `serve_proxies` / `--targets`."""

    model_config = ConfigDict(extra="forbid")

    name: str
    listen_port: int = Field(ge=0, le=65535, description="0 picks a free port")
    upstream: str = Field(description="e.g. http://127.0.0.1:5055 (a path prefix is kept)")
    aws: bool = False
    spec: FaultSpec = Field(default_factory=FaultSpec)
    preserve_host: bool | None = Field(
        None,
        description="forward the client's Host header; default: only for AWS targets",
    )

    @field_validator("spec", mode="before")
    @classmethod
    def _compact(cls, value: Any) -> Any:
        if value is None:
            return FaultSpec()
        return FaultSpec.parse(value) if isinstance(value, str) else value
