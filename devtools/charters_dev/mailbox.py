"""Reads the mail SES (moto) has sent and the texts SNS (moto) has published, over moto's HTTP
API: the local stack's inbox and phone."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from html import unescape
from typing import Any

import httpx

LINK = re.compile(r'href="([^"]*/c/[^"?]+)\?d=(accept|decline)"')


@dataclass(frozen=True)
class Mail:
    id: str
    to: list[str]
    subject: str
    body: str
    sender: str = ""

    def magic_links(self) -> dict[str, str]:
        """decision -> link, from the Accept/Decline anchors of a crew email."""
        return {d: unescape(url) for url, d in LINK.findall(self.body)}


def moto_state(moto_url: str, attempts: int = 6) -> dict[str, Any]:
    """Every model moto holds. moto serialises live models for this answer, so a model that
    changes meanwhile (a send in flight) can turn it into a 500: such a read is tried again."""
    url = f"{moto_url.rstrip('/')}/moto-api/data.json"
    for _ in range(attempts - 1):
        try:
            return _read_state(url)
        except (httpx.HTTPError, ValueError):
            time.sleep(0.5)
    return _read_state(url)


def _read_state(url: str) -> dict[str, Any]:
    response = httpx.get(url, timeout=10)
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


def sent_mail(moto_url: str) -> list[Mail]:
    data = moto_state(moto_url)
    return [
        Mail(
            id=m["id"],
            to=list(m.get("destinations", {}).get("ToAddresses", [])),
            subject=m.get("subject", ""),
            body=m.get("body", ""),
            sender=m.get("source", ""),
        )
        for m in data.get("ses", {}).get("Message", [])
    ]


@dataclass(frozen=True)
class Text:
    id: str
    to: str
    body: str


def sent_sms(moto_url: str) -> list[Text]:
    """Every SMS published to a phone number (moto keeps them, in order, under `sns.SMS`)."""
    data = moto_state(moto_url)
    return [
        Text(id=t["message_id"], to=t["phone_number"], body=t["message"])
        for t in data.get("sns", {}).get("SMS", [])
    ]
