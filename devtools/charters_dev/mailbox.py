"""Reads the mail SES (moto) has sent and the texts SNS (moto) has published, over moto's HTTP
API: the local stack's inbox and phone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import unescape

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


def sent_mail(moto_url: str) -> list[Mail]:
    data = httpx.get(f"{moto_url.rstrip('/')}/moto-api/data.json", timeout=10).json()
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
    data = httpx.get(f"{moto_url.rstrip('/')}/moto-api/data.json", timeout=10).json()
    return [
        Text(id=t["message_id"], to=t["phone_number"], body=t["message"])
        for t in data.get("sns", {}).get("SMS", [])
    ]
