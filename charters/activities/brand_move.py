"""Moving a booking's guest page to another brand's site, as the business once did by hand: the
page goes up on the new site, a notice linking to it replaces the old page, both are
invalidated. Every write is deterministic, so a retry repeats nothing that matters."""

from __future__ import annotations

import hashlib

from temporalio import activity

from charters.activities.cloudfront import CloudFrontActivities
from charters.activities.guest_page import GuestPageActivities, on_brand
from charters.models import GuestPageRef, GuestPageRequest, MovePageRequest, MovePageResult
from charters.pages import render


class BrandMoveActivities:
    def __init__(self, pages: GuestPageActivities, cloudfront: CloudFrontActivities) -> None:
        self._pages = pages
        self._cf = cloudfront

    @activity.defn(name="move_guest_page")
    def move_guest_page(self, req: MovePageRequest) -> MovePageResult:
        """New page first (the notice must never link to nothing), then the notice at the old
        key, then the invalidations, new site's first. CallerReferences are the key, the side
        and the content hash, so a retry gets the same invalidations back from CloudFront."""
        old, new = self._pages.brand(req.from_brand), self._pages.brand(req.to_brand)
        page = self._pages.publish_on(
            new,
            GuestPageRequest(charter=req.charter, event_id=req.event_id, brand=new.name),
        )
        charter = on_brand(req.charter, old)
        body = render("moved_page.html", charter=charter, new_url=page.url, look=old.look).encode()
        key = old.page_key(charter.slug)
        digest = self._pages.put_html(old, key, body, charter.booking_ref)
        notice = GuestPageRef(
            bucket=old.bucket, key=key, url=charter.guest_page_url, content_sha256=digest
        )
        slug = req.charter.slug
        invalidations = [
            self._cf.invalidate(new, slug, _reference(req.idempotency_key, "new", page)),
            self._cf.invalidate(old, slug, _reference(req.idempotency_key, "old", notice)),
        ]
        return MovePageResult(page=page, notice=notice, invalidations=invalidations)


def _reference(key: str, side: str, page: GuestPageRef) -> str:
    """Within CloudFront's 128-character limit on a CallerReference whatever the key's length."""
    text = f"{key}:{side}:{page.content_sha256[:32]}"
    return text if len(text) <= 128 else hashlib.sha256(text.encode()).hexdigest()
