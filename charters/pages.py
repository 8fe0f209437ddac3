"""Renders every page and email with Jinja2, autoescaped. Pure: no I/O beyond the templates."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from charters.brands import BrandLook


def _when(value: datetime, zone: str) -> str:
    local = value.replace(tzinfo=ZoneInfo(zone)) if value.tzinfo is None else value
    return f"{local:%A, %B} {local.day}, {local:%Y} at {local:%-I:%M %p} {local.tzname()}"


def _hours(value: Decimal) -> str:
    text = f"{value.normalize():f}"
    return f"{text} hour" + ("" if value == 1 else "s")


def _usd(value: Decimal) -> str:
    """$1,234.56, and -$59.25 for a negative amount (never $-59.25)."""
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.2f}"


FEE_WORDS = {"boatsetter": "Boatsetter", "stripe": "Stripe", "usd": "USD", "scc": "SCC"}


def _label(key: str) -> str:
    """A fee's key as words: `boatsetter_fee` -> `Boatsetter fee`, `card-processing` ->
    `Card processing`."""
    words = [w for w in key.replace("-", "_").split("_") if w]
    shown = [FEE_WORDS.get(w.lower(), w.lower()) for w in words]
    return (
        (shown[0][:1].upper() + shown[0][1:] + "".join(f" {w}" for w in shown[1:]))
        if shown
        else key
    )


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("charters", "templates"),
        autoescape=select_autoescape(["html", "xml"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["hours"] = _hours
    env.filters["usd"] = _usd
    env.filters["label"] = _label
    env.globals["look"] = BrandLook()
    return env


def render(template: str, **context: Any) -> str:
    """`look` (a BrandLook) styles the page or email; the default brand's look when absent."""
    return environment().get_template(template).render(**context)
