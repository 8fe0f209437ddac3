"""Brands as configuration: each is a guest site (bucket, distribution, path scheme), a sender and
a look. One deployment serves every configured brand; a booking names its own."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from charters.models.booking import BrandName, Email, describe_validation_error

Colour = Annotated[str, StringConstraints(pattern=r"^#[0-9a-fA-F]{6}$")]
PathScheme = Literal["rewrite", "plain"]

DEFAULT_INK = "#10243e"
DEFAULT_SEA = "#0b6e99"
DEFAULT_SAND = "#f6f1e7"


class BrandError(ValueError):
    """The brand configuration, or a brand named by a booking or command, is not usable."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BrandLook(_Frozen):
    """How the brand's pages and emails look. Colours are validated hex, so they can go into a
    style block without escaping."""

    display_name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)] = (
        "Queen of San Diego"
    )
    logo_url: str | None = Field(
        None, description="https URL or a path on the brand's site; the page CSP must allow it"
    )
    ink: Colour = DEFAULT_INK
    accent: Colour = DEFAULT_SEA
    background: Colour = DEFAULT_SAND
    footer: Annotated[str, StringConstraints(max_length=300)] = ""

    @field_validator("logo_url")
    @classmethod
    def _logo(cls, value: str | None) -> str | None:
        if value is not None and not (value.startswith("https://") or value.startswith("/")):
            raise ValueError("must be an https:// URL or a path on the brand's site")
        return value

    @property
    def custom_colours(self) -> bool:
        return (self.ink, self.accent, self.background) != (DEFAULT_INK, DEFAULT_SEA, DEFAULT_SAND)

    def style_hash(self) -> str | None:
        """The CSP source (`'sha256-...'`) that allows `style_block`, for the brand's
        ContentSecurityPolicy; None when the pages add no style."""
        block = self.style_block()
        if not block:
            return None
        inner = block.removeprefix("<style>").removesuffix("</style>")
        digest = base64.b64encode(hashlib.sha256(inner.encode()).digest()).decode()
        return f"'sha256-{digest}'"

    def style_block(self) -> str:
        """The page's colour overrides: a `<style>` of its own (empty for the default colours),
        made only of validated hex values, so its CSP hash is fixed per brand."""
        if not self.custom_colours:
            return ""
        return (
            f"<style>:root{{--ink:{self.ink};--sea:{self.accent};"
            f"--sand:{self.background};}}</style>"
        )


class Brand(_Frozen):
    """One guest site and its voice. `rewrite`: pages at `/g/{slug}`, mapped to the object by
    the CloudFront Function; `plain`: the page served at its own key (no function)."""

    name: BrandName
    site_url: Annotated[str, StringConstraints(pattern=r"^https?://[^/\s]+$")]
    bucket: Annotated[str, StringConstraints(min_length=3, max_length=63)]
    key_prefix: Annotated[str, StringConstraints(pattern=r"^([A-Za-z0-9._-]+/)*$")] = "guest-pages/"
    distribution_id: Annotated[str, StringConstraints(min_length=1)]
    path_scheme: PathScheme = "rewrite"
    path_prefix: Annotated[str, StringConstraints(pattern=r"^/([a-z0-9-]+/)*$")] = "/g/"
    sender: Email
    reply_to: Email | None = None
    look: BrandLook = BrandLook()

    @field_validator("site_url", mode="before")
    @classmethod
    def _no_trailing_slash(cls, value: Any) -> Any:
        return value.rstrip("/") if isinstance(value, str) else value

    def page_key(self, slug: str) -> str:
        return f"{self.key_prefix}{slug}.html"

    def page_path(self, slug: str) -> str:
        if self.path_scheme == "plain":
            return f"/{self.page_key(slug)}"
        return f"{self.path_prefix}{slug}"

    def page_url(self, slug: str) -> str:
        return f"{self.site_url}{self.page_path(slug)}"

    def invalidation_paths(self, slug: str) -> list[str]:
        """`rewrite`: the viewer URIs and the URI the function rewrites them to (CloudFront
        caches under the rewritten one and its guide says to invalidate both); `plain`: the
        page's own key, the only URI it is served and cached under."""
        if self.path_scheme == "plain":
            return [self.page_path(slug)]
        return [
            f"{self.path_prefix}{slug}",
            f"{self.path_prefix}{slug}/",
            f"/{self.page_key(slug)}",
        ]


class BrandBook(_Frozen):
    """Every configured brand and the one a booking gets when it names none."""

    brands: dict[str, Brand]
    default: str

    @model_validator(mode="after")
    def _default_is_known(self) -> BrandBook:
        if not self.brands:
            raise ValueError("no brands configured")
        if self.default not in self.brands:
            raise ValueError(
                f"default brand {self.default!r} is not configured; one of: {self.names_text}"
            )
        return self

    @property
    def names(self) -> list[str]:
        return list(self.brands)

    @property
    def names_text(self) -> str:
        return ", ".join(self.brands)

    def get(self, name: str | None) -> Brand:
        """The named brand (None: the default); BrandError names the configured ones."""
        if name is None:
            return self.brands[self.default]
        try:
            return self.brands[name]
        except KeyError:
            raise BrandError(
                f"brand {name!r} is not configured; one of: {self.names_text}"
            ) from None

    @classmethod
    def of(cls, brands: Iterable[Brand], default: str | None = None) -> BrandBook:
        listed = list(brands)
        named = {b.name: b for b in listed}
        if len(named) != len(listed):
            seen = [b.name for b in listed]
            repeated = sorted({n for n in seen if seen.count(n) > 1})
            raise BrandError(f"brands: names repeat: {repeated}")
        if not listed:
            raise BrandError("brands: none configured")
        chosen = default or listed[0].name
        if chosen not in named:
            raise BrandError(
                f"default brand {chosen!r} is not configured; one of: {', '.join(named)}"
            )
        return cls(brands=named, default=chosen)


def read_brands(source: str) -> list[Brand]:
    """`CHARTERS_BRANDS`: JSON text, or the path of a YAML or JSON file. Either holds a list of
    brands, or a mapping of name to brand (the key is the name)."""
    text = source.strip()
    if text.startswith(("[", "{")):
        try:
            data: Any = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BrandError(f"CHARTERS_BRANDS is not valid JSON: {exc}") from None
    else:
        path = Path(text).expanduser()
        if not path.is_file():
            raise BrandError(f"CHARTERS_BRANDS: no brands file {path}")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise BrandError(f"{path}: not valid YAML: {exc}") from None
        if isinstance(data, dict) and "brands" in data and len(data) == 1:
            data = data["brands"]
    if isinstance(data, dict):
        data = [{"name": name, **(value or {})} for name, value in data.items()]
    if not isinstance(data, list):
        raise BrandError("CHARTERS_BRANDS: a list of brands, or a mapping of name to brand")
    brands = []
    for index, item in enumerate(data):
        try:
            brands.append(Brand.model_validate(item))
        except ValidationError as exc:
            label = item.get("name", index) if isinstance(item, dict) else index
            raise BrandError(f"brand {label}: {describe_validation_error(exc)}") from None
    return brands
