"""The guest page: rendered HTML in S3 at `guest-pages/{slug}.html`, served by CloudFront."""

from __future__ import annotations

import hashlib
from datetime import UTC, timedelta
from typing import Any
from urllib.parse import quote

from temporalio import activity

from charters.aws_errors import aws_errors
from charters.models import (
    AlbumRef,
    AlbumRequest,
    CrewView,
    GuestPageRef,
    GuestPageRequest,
    album_slug,
)
from charters.pages import render

FIXES = {
    "NoSuchBucket": "set CHARTERS_GUEST_BUCKET to the guest site's bucket (the template "
    "creates it)",
    "AccessDenied": "grant the worker's role s3:PutObject on CHARTERS_GUEST_BUCKET under "
    "CHARTERS_GUEST_KEY_PREFIX (and kms:GenerateDataKey if the bucket uses a KMS key)",
}
DEFAULT_FIX = "check CHARTERS_GUEST_BUCKET and the worker's S3 permissions on it"


def ics_calendar(charter: CrewView) -> str:
    """An iCalendar file for the guest (RFC 5545), times in UTC."""
    starts = charter.starts_at.replace(tzinfo=_zone(charter.timezone)).astimezone(UTC)
    ends = starts + timedelta(hours=float(charter.duration_hours))

    def esc(text: str) -> str:
        return (
            text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")
        )

    return "\r\n".join(
        [
            "BEGIN:VCALENDAR",
            "VERSION:2.0",
            "PRODID:-//Queen of San Diego//Charters//EN",
            "BEGIN:VEVENT",
            f"UID:{charter.booking_ref}@queenofsandiego.com",
            f"DTSTAMP:{starts:%Y%m%dT%H%M%SZ}",
            f"DTSTART:{starts:%Y%m%dT%H%M%SZ}",
            f"DTEND:{ends:%Y%m%dT%H%M%SZ}",
            f"SUMMARY:{esc('Charter aboard Queen of San Diego')}",
            f"LOCATION:{esc(charter.location)}",
            f"URL:{charter.guest_page_url}",
            "END:VEVENT",
            "END:VCALENDAR",
            "",
        ]
    )


def _zone(name: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def render_guest_page(req: GuestPageRequest, presign_base: str) -> str:
    if req.cancelled:
        return render("cancelled_page.html", charter=req.charter)
    ics = "data:text/calendar;charset=utf-8," + quote(ics_calendar(req.charter))
    presign = f"{presign_base.rstrip('/')}/g/{req.event_id}/presign" if req.event_id else ""
    return render(
        "guest_page.html",
        charter=req.charter,
        event_id=req.event_id,
        presign_url=presign,
        ics_href=ics,
    )


NOT_FOUND_PAGE = "not-found.html"


def publish_not_found_page(s3: Any, bucket: str, key_prefix: str) -> str:
    """The branded page CloudFront answers (as a 404) for a guest page that does not exist: its
    custom error response reads `/{key_prefix}not-found.html` (infra/charters.yaml). No booking
    data in it; same bytes every time. Returns the key."""
    key = f"{key_prefix}{NOT_FOUND_PAGE}"
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=render("not_found.html").encode(),
        ContentType="text/html; charset=utf-8",
        CacheControl="max-age=300",
    )
    return key


class GuestPageActivities:
    def __init__(self, s3: Any, bucket: str, key_prefix: str, presign_base: str) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._prefix = key_prefix
        self._presign_base = presign_base

    def _put_html(self, key: str, body: bytes, booking_ref: str) -> str:
        """Deterministic key and body: a repeat writes the same bytes to the same key."""
        digest = hashlib.sha256(body).hexdigest()
        with aws_errors("S3", FIXES, DEFAULT_FIX, subject=self._bucket):
            self._s3.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=body,
                ContentType="text/html; charset=utf-8",
                CacheControl="max-age=60",
                Metadata={"booking-ref": booking_ref, "content-sha256": digest},
            )
        return digest

    @activity.defn(name="publish_guest_page")
    def publish_guest_page(self, req: GuestPageRequest) -> GuestPageRef:
        """Deterministic key and body: a repeat writes the same bytes to the same key."""
        body = render_guest_page(req, self._presign_base).encode()
        key = f"{self._prefix}{req.charter.slug}.html"
        digest = self._put_html(key, body, req.charter.booking_ref)
        return GuestPageRef(
            bucket=self._bucket, key=key, url=req.charter.guest_page_url, content_sha256=digest
        )

    @activity.defn(name="publish_photo_album")
    def publish_photo_album(self, req: AlbumRequest) -> AlbumRef:
        """The album: every photo guests uploaded under `photos/{event_id}/`, linked by path on
        the guest site (CloudFront serves the bucket's `photos/` keys; the page lives at
        `/g/{slug}-photos`, a guest page of its own). Same photos, same bytes."""
        prefix = f"photos/{req.event_id}/"
        keys: list[str] = []
        with aws_errors("S3", FIXES, DEFAULT_FIX, subject=self._bucket):
            for page in self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self._bucket, Prefix=prefix
            ):
                keys += [obj["Key"] for obj in page.get("Contents", []) or []]
        photos = [f"/{quote(key)}" for key in sorted(keys)]
        body = render("album.html", charter=req.charter, photos=photos).encode()
        slug = album_slug(req.charter.slug)
        key = f"{self._prefix}{slug}.html"
        digest = self._put_html(key, body, req.charter.booking_ref)
        url = req.charter.guest_page_url.rsplit("/", 1)[0] + f"/{slug}"
        return AlbumRef(key=key, url=url, photos=len(photos), content_sha256=digest)
