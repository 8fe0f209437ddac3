"""The guest page: rendered HTML in S3 at `guest-pages/{slug}.html`, served by CloudFront."""

from __future__ import annotations

import hashlib
from datetime import UTC, timedelta
from typing import Any
from urllib.parse import quote

from temporalio import activity

from charters import errors
from charters.aws_errors import aws_errors
from charters.brands import Brand, BrandBook, BrandError, BrandLook
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


def ics_calendar(charter: CrewView, display_name: str = "Queen of San Diego") -> str:
    """An iCalendar file for the guest (RFC 5545), times in UTC. The UID stays the same whatever
    the brand, so a calendar that imported it updates the one event."""
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
            "PRODID:-//Temporal Charters//Charters//EN",
            "BEGIN:VEVENT",
            f"UID:{charter.booking_ref}@queenofsandiego.com",
            f"DTSTAMP:{starts:%Y%m%dT%H%M%SZ}",
            f"DTSTART:{starts:%Y%m%dT%H%M%SZ}",
            f"DTEND:{ends:%Y%m%dT%H%M%SZ}",
            f"SUMMARY:{esc(f'Charter aboard {display_name}')}",
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


def on_brand(charter: CrewView, brand: Brand) -> CrewView:
    """The charter with its guest page URL on `brand`'s site: every page and message built for
    a brand links to that brand's page, whatever URL the workflow last recorded."""
    url = brand.page_url(charter.slug)
    return (
        charter
        if charter.guest_page_url == url
        else charter.model_copy(update={"guest_page_url": url})
    )


def render_guest_page(
    req: GuestPageRequest, presign_base: str, look: BrandLook | None = None
) -> str:
    look = look or BrandLook()
    if req.cancelled:
        return render("cancelled_page.html", charter=req.charter, look=look)
    ics = "data:text/calendar;charset=utf-8," + quote(ics_calendar(req.charter, look.display_name))
    presign = f"{presign_base.rstrip('/')}/g/{req.event_id}/presign" if req.event_id else ""
    return render(
        "guest_page.html",
        charter=req.charter,
        event_id=req.event_id,
        presign_url=presign,
        ics_href=ics,
        look=look,
    )


def single_brand(
    bucket: str,
    key_prefix: str,
    distribution_id: str = "unset",
    path_prefix: str = "/g/",
    sender: str = "bookings@queenofsandiego.com",
) -> BrandBook:
    """One `rewrite` brand from single-site arguments (the activities' constructors before brands
    were configuration)."""
    brand = Brand(
        name="default",
        site_url="https://queenofsandiego.com",
        bucket=bucket,
        key_prefix=key_prefix,
        distribution_id=distribution_id,
        path_prefix=path_prefix,
        sender=sender,
    )
    return BrandBook.of([brand])


NOT_FOUND_PAGE = "not-found.html"


def publish_not_found_page(
    s3: Any, bucket: str, key_prefix: str, look: BrandLook | None = None
) -> str:
    """The branded page CloudFront answers (as a 404) for a guest page that does not exist: its
    custom error response reads `/{key_prefix}not-found.html` (infra/charters.yaml). No booking
    data in it; same bytes every time. Returns the key."""
    key = f"{key_prefix}{NOT_FOUND_PAGE}"
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=render("not_found.html", look=look or BrandLook()).encode(),
        ContentType="text/html; charset=utf-8",
        CacheControl="max-age=300",
    )
    return key


class GuestPageActivities:
    def __init__(
        self,
        s3: Any,
        bucket: str,
        key_prefix: str,
        presign_base: str,
        *,
        brands: BrandBook | None = None,
    ) -> None:
        """`brands`: every configured brand; without it, one brand from `bucket` and
        `key_prefix`."""
        self._s3 = s3
        self._brands = brands or single_brand(bucket, key_prefix)
        self._rebase = brands is not None
        self._presign_base = presign_base

    def _charter(self, charter: CrewView, brand: Brand) -> CrewView:
        return on_brand(charter, brand) if self._rebase else charter

    def brand(self, name: str | None) -> Brand:
        """The request's brand; an unknown name is an operator's fix (the configuration)."""
        try:
            return self._brands.get(name)
        except BrandError as exc:
            raise errors.needs_operator(
                str(exc), "add the brand to CHARTERS_BRANDS on every worker", subject=name
            ) from None

    def put_html(self, brand: Brand, key: str, body: bytes, booking_ref: str) -> str:
        """Deterministic key and body: a repeat writes the same bytes to the same key."""
        digest = hashlib.sha256(body).hexdigest()
        with aws_errors("S3", FIXES, DEFAULT_FIX, subject=brand.bucket):
            self._s3.put_object(
                Bucket=brand.bucket,
                Key=key,
                Body=body,
                ContentType="text/html; charset=utf-8",
                CacheControl="max-age=60",
                Metadata={"booking-ref": booking_ref, "content-sha256": digest},
            )
        return digest

    def publish_on(self, brand: Brand, req: GuestPageRequest) -> GuestPageRef:
        charter = self._charter(req.charter, brand)
        request = req.model_copy(update={"charter": charter})
        body = render_guest_page(request, self._presign_base, brand.look).encode()
        key = brand.page_key(charter.slug)
        digest = self.put_html(brand, key, body, charter.booking_ref)
        return GuestPageRef(
            bucket=brand.bucket, key=key, url=charter.guest_page_url, content_sha256=digest
        )

    @activity.defn(name="publish_guest_page")
    def publish_guest_page(self, req: GuestPageRequest) -> GuestPageRef:
        """Deterministic key and body on the request's brand (its bucket, key prefix and look; the
        page's URL on its site): a repeat writes the same bytes to the same key."""
        return self.publish_on(self.brand(req.brand), req)

    @activity.defn(name="publish_photo_album")
    def publish_photo_album(self, req: AlbumRequest) -> AlbumRef:
        """The album: every photo guests uploaded under `photos/{event_id}/`, linked by path on
        the guest site (CloudFront serves the bucket's `photos/` keys; the page lives at
        `/g/{slug}-photos`, a guest page of its own). Same photos, same bytes."""
        brand = self.brand(req.brand)
        charter = self._charter(req.charter, brand)
        prefix = f"photos/{req.event_id}/"
        keys: list[str] = []
        with aws_errors("S3", FIXES, DEFAULT_FIX, subject=brand.bucket):
            for page in self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=brand.bucket, Prefix=prefix
            ):
                keys += [obj["Key"] for obj in page.get("Contents", []) or []]
        photos = [f"/{quote(key)}" for key in sorted(keys)]
        body = render("album.html", charter=charter, photos=photos, look=brand.look).encode()
        slug = album_slug(charter.slug)
        key = brand.page_key(slug)
        digest = self.put_html(brand, key, body, charter.booking_ref)
        if self._rebase:
            url = brand.page_url(slug)
        else:
            url = charter.guest_page_url.rsplit("/", 1)[0] + f"/{slug}"
        return AlbumRef(key=key, url=url, photos=len(photos), content_sha256=digest)
