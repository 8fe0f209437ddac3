"""Removes revenue from text crew can see: every money amount of the booking and any
`Revenue: ...`-style clause, leaving all other text exactly as it was."""

from __future__ import annotations

import re
from decimal import Decimal

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
