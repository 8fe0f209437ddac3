"""Removes revenue from text crew can see: every money amount of the booking and any
`Revenue: ...`-style clause, leaving all other text exactly as it was."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

_LABELLED = re.compile(
    r"(?:\s*\|\s*)?\b(?:revenue|gross|net|payout|earnings|income)\b\s*[:=]\s*\$?\s*\d[\d,]*(?:\.\d+)?",
    re.IGNORECASE,
)


def _amount_pattern(amount: Decimal) -> re.Pattern[str]:
    whole, _, cents = f"{amount:.2f}".partition(".")
    variants = sorted({whole, f"{int(whole):,}"}, key=len, reverse=True)
    body = "|".join(re.escape(v) for v in variants)
    return re.compile(
        rf"\$\s*(?:{body})(?:\.{cents})?(?![\d])|(?<!\d)(?<!\d[.,])(?:{body})\.{cents}(?![\d])"
    )


def redact(text: str, amounts: list[Decimal]) -> str:
    out = _LABELLED.sub("", text)
    for amount in amounts:
        out = _amount_pattern(amount).sub("[redacted]", out)
    return out


def contains_revenue(text: str, amounts: list[Decimal]) -> bool:
    return redact(text, amounts) != text


# DynamoDB items: revenue can sit in any attribute, at any depth (a map of figures, a list of
# notes), as a string or as a number.
_REVENUE_KEY = re.compile(r"^(?:revenue|gross|net|payout|earnings|income)(?:_.*)?$", re.IGNORECASE)
REDACTED = "[redacted]"


def _is_amount(number: str, amounts: list[Decimal]) -> bool:
    try:
        value = Decimal(number)
    except ArithmeticError:
        return False
    return any(value == a for a in amounts)


def _has_digit(value: Any) -> bool:
    return any(ch.isdigit() for ch in str(value))


def redact_attribute(value: dict[str, Any], amounts: list[Decimal]) -> dict[str, Any] | None:
    """One DynamoDB AttributeValue with the revenue removed, at any depth: strings as `redact`,
    a number equal to an amount becomes the string "[redacted]", a map entry named like
    revenue (`gross`, `net_total`, ...) holding a figure is dropped (None at this level)."""
    if "S" in value:
        return {"S": redact(str(value["S"]), amounts)}
    if "N" in value:
        return {"S": REDACTED} if _is_amount(str(value["N"]), amounts) else value
    if "SS" in value:
        return {"SS": sorted({redact(str(s), amounts) for s in value["SS"]})}
    if "NS" in value:
        kept = [n for n in value["NS"] if not _is_amount(str(n), amounts)]
        return {"NS": kept} if kept else None
    if "L" in value:
        items = [redact_attribute(v, amounts) for v in value["L"]]
        return {"L": [v for v in items if v is not None]}
    if "M" in value:
        out: dict[str, Any] = {}
        for key, inner in value["M"].items():
            if _REVENUE_KEY.match(key) and _has_digit(inner):
                continue
            clean = redact_attribute(inner, amounts)
            if clean is not None:
                out[key] = clean
        return {"M": out}
    return value


def redact_item_field(
    name: str, value: dict[str, Any], amounts: list[Decimal]
) -> dict[str, Any] | None:
    """A top-level attribute of an item crew can see, cleaned; None means remove it."""
    if _REVENUE_KEY.match(name) and _has_digit(value):
        return None
    return redact_attribute(value, amounts)
