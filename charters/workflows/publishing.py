"""What the guest sees: the guest page in S3 and its CloudFront invalidation, the cancellation
notice in its place, and after the trip the photo album page."""

from __future__ import annotations

from temporalio import workflow

from charters.models import (
    AlbumRequest,
    BookingOptions,
    BookingState,
    GuestPageRequest,
    InvalidationRequest,
    album_slug,
)
from charters.workflows.steps import StepRunner

with workflow.unsafe.imports_passed_through():
    from charters.activities.cloudfront import CloudFrontActivities
    from charters.activities.guest_page import GuestPageActivities


class Publishing:
    def __init__(
        self, state: BookingState, steps: StepRunner, options: BookingOptions, wf_id: str
    ) -> None:
        self._s = state
        self._steps = steps
        self._o = options
        self._wf_id = wf_id

    async def publish(self, cancelled: bool = False) -> None:
        """Render and put the page, then invalidate CloudFront for that exact content."""
        booking = self._s.booking
        assert booking is not None
        request = GuestPageRequest(
            charter=booking.crew_view(self._o.guest_page_url),
            event_id=self._s.event_id,
            cancelled=cancelled,
        )
        page = await self._steps.run(
            "guest_page",
            lambda: self._steps.activity(GuestPageActivities.publish_guest_page, request),
            skippable="the page keeps its previous content" if self._s.page else None,
        )
        if page is None:
            return
        self._s.page = page
        await self.invalidate(booking.page_slug, page.content_sha256)

    async def publish_cancellation(self) -> None:
        await self.publish(cancelled=True)

    async def invalidate(self, slug: str, content_sha256: str) -> None:
        request = InvalidationRequest(
            idempotency_key=self._wf_id, slug=slug, content_sha256=content_sha256
        )
        invalidation = await self._steps.run(
            "invalidate",
            lambda: self._steps.activity(CloudFrontActivities.invalidate_guest_page, request),
            skippable="guests may see the cached page until it expires (max-age 60 s)",
        )
        if invalidation is not None and invalidation.invalidation_id not in self._s.invalidations:
            self._s.invalidations.append(invalidation.invalidation_id)

    async def publish_album(self) -> str | None:
        """The album page, built from the photos guests uploaded under the event."""
        booking = self._s.booking
        if booking is None or not self._s.event_id:
            return None
        request = AlbumRequest(
            charter=booking.crew_view(self._o.guest_page_url), event_id=self._s.event_id
        )
        album = await self._steps.run(
            "album",
            lambda: self._steps.activity(GuestPageActivities.publish_photo_album, request),
            skippable="the thank-you then goes out without an album link",
        )
        if album is None:
            return None
        await self.invalidate(album_slug(booking.page_slug), album.content_sha256)
        return album.url
