"""What the guest sees: the guest page in S3 and its CloudFront invalidation, the cancellation
notice in its place, the guest's emails, and after the trip the photo album page. Owns
`effects.page`, `effects.invalidations`, `effects.album_url` and `clocks.guest_emails`."""

from __future__ import annotations

from charters.contract import Activity
from charters.models import (
    AlbumRef,
    AlbumRequest,
    BookingOptions,
    BookingState,
    EmailSent,
    GuestEmailKind,
    GuestEmailRequest,
    GuestPageRef,
    GuestPageRequest,
    InvalidationRef,
    InvalidationRequest,
    album_slug,
)
from charters.workflows.steps import StepRunner


class Publishing:
    def __init__(
        self, state: BookingState, steps: StepRunner, options: BookingOptions, workflow_id: str
    ) -> None:
        self._state = state
        self._effects = state.effects
        self._steps = steps
        self._options = options
        self._workflow_id = workflow_id

    async def publish(self, cancelled: bool = False) -> None:
        """Render and put the page, then invalidate CloudFront for that exact content."""
        booking = self._state.validated
        request = GuestPageRequest(
            charter=booking.crew_view(self._state.guest_page_url),
            event_id=self._effects.event_id,
            cancelled=cancelled,
            brand=booking.brand,
        )
        if "guest_page" not in self._effects.attempted:
            self._effects.attempted.append("guest_page")
        page = await self._steps.run(
            "guest_page",
            Activity.PUBLISH_GUEST_PAGE,
            request,
            GuestPageRef,
            skippable="the page keeps its previous content" if self._effects.page else None,
        )
        if page is None:
            return
        self._effects.page = page
        await self.invalidate(booking.page_slug, page.content_sha256)

    async def invalidate(self, slug: str, content_sha256: str) -> None:
        request = InvalidationRequest(
            idempotency_key=self._workflow_id,
            slug=slug,
            content_sha256=content_sha256,
            brand=self._state.validated.brand,
        )
        invalidation = await self._steps.run(
            "invalidate",
            Activity.INVALIDATE_GUEST_PAGE,
            request,
            InvalidationRef,
            skippable="guests may see the cached page until it expires (max-age 60 s)",
        )
        if (
            invalidation is not None
            and invalidation.invalidation_id not in self._effects.invalidations
        ):
            self._effects.invalidations.append(invalidation.invalidation_id)

    async def publish_album(self) -> str | None:
        """The album page, built from the photos guests uploaded under the event."""
        if not self._effects.event_id:
            return None
        request = AlbumRequest(
            charter=self._state.validated.crew_view(self._state.guest_page_url),
            event_id=self._effects.event_id,
            brand=self._state.validated.brand,
        )
        album = await self._steps.run(
            "album",
            Activity.PUBLISH_PHOTO_ALBUM,
            request,
            AlbumRef,
            skippable="the thank-you then goes out without an album link",
        )
        if album is None:
            return None
        await self.invalidate(album_slug(self._state.validated.page_slug), album.content_sha256)
        self._effects.album_url = album.url
        return album.url

    async def email_guest(
        self,
        step: str,
        key: str,
        kind: GuestEmailKind,
        hours_before: float | None = None,
        album_url: str | None = None,
        moved_from: str | None = None,
    ) -> None:
        """One guest email, once per key; a refused address blocks only this email."""
        if key in self._state.clocks.guest_emails:
            return
        request = GuestEmailRequest(
            idempotency_key=f"{self._workflow_id}:{key}",
            guest_email=self._state.validated.guest.email,
            charter=self._state.validated.crew_view(self._state.guest_page_url),
            kind=kind,
            hours_before=hours_before,
            album_url=album_url,
            brand=self._state.validated.brand,
            moved_from=moved_from,
        )
        sent = await self._steps.run(
            step,
            Activity.SEND_GUEST_EMAIL,
            request,
            EmailSent,
            block_on=f"guest-email:{key}",  # one block per email: both reminders can wait
            skippable=f"the guest then gets no {kind} email",
        )
        # skipped by an operator: owed no more (no message id)
        self._state.clocks.guest_emails[key] = sent.message_id if sent is not None else ""
