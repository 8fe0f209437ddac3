"""The outside world of a booking, in memory: the JADA calendar, ShipCaptainCrew and its Lambda's
key, the guest site (S3 + CloudFront) and SES, with the semantics the real systems (and the
stack's stand-ins) have, and the booking's activities registered under the contract's names, so
a worker runs `CharterBookingWorkflow` against it with no moto and no HTTP.

Registering a function under an activity's name is the SDK's documented way to replace
activities in workflow tests; the workflow calls activities by name (`contract.Activity`) with
the request and result models of `charters.models.messages`, so these functions take and
return exactly those.

What each system does, as the real one does:
- calendar and SCC creates are deduplicated by their Idempotency-Key (a repeated key returns
  the first entry, `created=False`); their cancels find every entry made under the key (none:
  `found=[]`, which is what a cancel of something already gone looks like);
- SCC refuses every call while the Lambda's SERVICE_KEY_HASH is missing or wrong
  (`SccAuthRejected`, retryable: someone may fix it); the key wait fails (retryably) until the
  hash is right;
- the guest page keeps only its current content: the last publish wins, and it says whether it
  is the cancellation notice;
- CloudFront answers a repeated CallerReference with the first invalidation;
- brands are the product's `Brand` configuration (`BRANDS`: sailjada.com serves pages at their
  plain key, queenofsandiego.com at `/g/{slug}`); a request naming no brand is on the booking's
  own URL, one naming a brand the world does not know fails for good, as a worker without that
  brand does; every site keeps each page's current content (`sites`), and moving a page puts it
  on the new site and a notice linking to it on the old one, deterministically;
- SNS texts go through the effect ledger under `sms:` keys, once per key; a member with no phone
  or no opt-in is skipped; a number on the opt-out list (`opted_out`) is not texted; a number SNS
  refuses (`refuse_phone`) fails for good, naming the member (`sms:<id>`);
- SES mail goes through the email ledger: a repeated idempotency key sends nothing new; a
  request with `only_if_sent` is sent only if one of those keys was sent (else `skipped`); an
  address SES refuses fails for good (`NeedsOperator`, as `charters.aws_errors` builds it).

Controls for tests: `hold` keeps an activity in flight (the test knows it started, and releases
it when it wants; a held call that is cancelled goes on to the end like a thread blocked in an
HTTP call, unless the gate honours cancellation), `fail` injects failures, and `calls`,
`effects` and the stores count everything that happened. Every activity is `async`: a held one
costs no thread and the whole world lives on the test's event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from temporalio import activity
from temporalio.exceptions import ApplicationError

from charters import errors
from charters.activities import validation
from charters.brands import Brand, BrandBook, BrandError
from charters.contract import Activity
from charters.models import (
    AlbumRef,
    AlbumRequest,
    Booking,
    CalendarCancelRequest,
    CalendarEntryRef,
    CalendarEntryRequest,
    CalendarStatusRequest,
    CaptainSummaryRequest,
    CompensationResult,
    CrewEmailRequest,
    CrewSmsRequest,
    CrewView,
    EmailSent,
    GuestEmailRequest,
    GuestPageRef,
    GuestPageRequest,
    InvalidationRef,
    InvalidationRequest,
    MovePageRequest,
    MovePageResult,
    OperationsAlertRequest,
    RedactionRequest,
    RedactionResult,
    SccCancelRequest,
    SccEventRef,
    SccEventRequest,
    SccKeyCheck,
    SccUpdateRequest,
    SmsSent,
    album_slug,
)
from charters.roster import CrewRoster, RosterMember

KeyState = Literal["ok", "missing", "mismatch"]
SES_REFUSED_FIX = (
    "correct this recipient's address (or replace the crew member); SES refuses it "
    "(suppression list, or a sandbox account sending to an unverified address)"
)


def needs_operator(message: str, fix: str, subject: str | None = None) -> ApplicationError:
    """A permanent failure, built the way the product's activities build it."""
    return errors.needs_operator(message, fix, subject=subject)


@dataclass
class Gate:
    """Holds the calls of one activity in flight until released. `entered` is set once a held
    call has started (so a test acts while it is in flight, never before). A held call goes on
    when released even if it was cancelled meanwhile (a sync activity blocked in an HTTP call
    cannot stop either), unless `honour_cancel`: then a cancel delivered to it ends it with no
    effect."""

    name: str
    times: int | None = 1
    honour_cancel: bool = False
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)
    poked: asyncio.Event = field(default_factory=asyncio.Event)
    held: int = 0
    cancels_seen: int = 0

    def release(self) -> None:
        self.released.set()

    def heartbeat(self) -> None:
        """Held regular activities heartbeat now: a cancel asked for meanwhile reaches them in
        the answer (an activity hears of a cancel only by heartbeating; the first heartbeat
        goes at once, later ones are throttled, so they send none before they are poked)."""
        self.poked.set()

    async def started(self, timeout: float = 30.0) -> None:
        """Wait (real time) until a held call is in flight."""
        try:
            await asyncio.wait_for(self.entered.wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"{self.name} was never called") from None

    def takes(self) -> bool:
        if self.released.is_set() or (self.times is not None and self.held >= self.times):
            return False
        self.held += 1
        return True

    async def hold(self) -> None:
        self.entered.set()
        beat = False
        while not self.released.is_set():
            try:
                if self.honour_cancel and not beat and not activity.info().is_local:
                    await _first(self.released, self.poked)
                    if self.poked.is_set() and not self.released.is_set():
                        beat = True
                        activity.heartbeat()
                    continue
                await self.released.wait()
            except asyncio.CancelledError:
                self.cancels_seen += 1
                if self.honour_cancel:
                    raise


async def _first(*events: asyncio.Event) -> None:
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


@dataclass
class Email:
    key: str
    to: str
    kind: str
    subject: str
    message_id: str


@dataclass
class CalendarEntry:
    entry_id: str
    idempotency_key: str
    booking_ref: str
    status: str
    starts_at: str


@dataclass
class SccEvent:
    event_id: str
    idempotency_key: str
    booking_ref: str
    status: str = "scheduled"
    starts_at: str = ""
    redacted: bool = False
    guest_page_url: str = ""
    crew: list[str] = field(default_factory=list)  # the seats' member ids, as SCC lists them


class MemoryRoster:
    """The crew roster's look-up, on a dict (what `resolve_members` asks of `CrewRoster`)."""

    def __init__(self, members: dict[str, RosterMember]) -> None:
        self._members = members

    def get(self, member_id: str) -> RosterMember | None:
        return self._members.get(member_id)


@dataclass
class GuestPage:
    slug: str
    content_sha256: str
    cancelled: bool
    starts_at: str
    url: str = ""
    moved_to: str | None = None
    """A notice that the page moved, linking to this URL."""
    crew: list[str] = field(default_factory=list)  # the names "Your crew" shows


@dataclass
class Text:
    key: str
    to: str
    kind: str
    body: str
    message_id: str


BRANDS = BrandBook.of(
    [
        Brand(
            name="queenofsandiego.com",
            site_url="https://queenofsandiego.com",
            bucket="queenofsandiego.com",
            distribution_id="EQUEEN",
            sender="charters@queenofsandiego.com",
        ),
        Brand(
            name="sailjada.com",
            site_url="https://sailjada.com",
            bucket="sailjada.com",
            distribution_id="EJADA",
            path_scheme="plain",
            sender="charters@sailjada.com",
        ),
    ],
    "queenofsandiego.com",
)
SNS_REFUSED_FIX = "correct this crew member's phone number on the roster"


class World:
    """One world per test. See the module docstring."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self.calls: Counter[str] = Counter()
        self.effects: Counter[str] = Counter()
        self.gates: dict[str, Gate] = {}
        self._failures: dict[str, list[Callable[[], BaseException]]] = {}
        self._failing: dict[str, Callable[[], BaseException]] = {}
        # the systems
        self.calendar: dict[str, CalendarEntry] = {}
        self.scc_events: dict[str, SccEvent] = {}
        self.scc_key: KeyState = "ok"
        self.pages: dict[str, GuestPage] = {}
        self.albums: dict[str, AlbumRef] = {}
        self.photos: dict[str, list[str]] = {}
        self.invalidations: dict[str, InvalidationRef] = {}
        self.mail: dict[str, Email] = {}
        self.sent: list[Email] = []
        self.refused: set[str] = set()
        self.sites: dict[str, dict[str, GuestPage]] = {}
        self.texts: dict[str, Text] = {}
        self.texted: list[Text] = []
        self.opted_out: set[str] = set()
        self.refused_phones: set[str] = set()
        self.roster: dict[str, RosterMember] = {}

    # ---- controls --------------------------------------------------------------------------

    def hold(self, name: Activity, times: int | None = 1, honour_cancel: bool = False) -> Gate:
        """Keep the next `times` calls of `name` in flight (None: every call until released)."""
        gate = Gate(name.value, times=times, honour_cancel=honour_cancel)
        self.gates[name.value] = gate
        return gate

    def release_all(self) -> None:
        for gate in self.gates.values():
            gate.release()

    def fail(
        self, name: Activity, error: Callable[[], BaseException], times: int | None = 1
    ) -> None:
        """The next `times` calls of `name` raise `error()` (None: every call until `heal`)."""
        if times is None:
            self._failing[name.value] = error
        else:
            self._failures.setdefault(name.value, []).extend([error] * times)

    def heal(self, name: Activity) -> None:
        self._failing.pop(name.value, None)
        self._failures.pop(name.value, None)

    def refuse_address(self, address: str) -> None:
        """SES refuses mail to `address` for good (MessageRejected) until `accept_address`."""
        self.refused.add(address)

    def accept_address(self, address: str) -> None:
        self.refused.discard(address)

    def refuse_phone(self, phone: str) -> None:
        """SNS refuses texts to `phone` for good (InvalidParameter) until `accept_phone`."""
        self.refused_phones.add(phone)

    def accept_phone(self, phone: str) -> None:
        self.refused_phones.discard(phone)

    async def _enter(self, name: Activity) -> None:
        """Every activity starts here: counted, held if a gate takes it, failed if told to."""
        self.calls[name.value] += 1
        gate = self.gates.get(name.value)
        if gate is not None and gate.takes():
            await gate.hold()
        queued = self._failures.get(name.value)
        if queued:
            raise queued.pop(0)()
        failing = self._failing.get(name.value)
        if failing is not None:
            raise failing()

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids)}"

    # ---- what tests read -------------------------------------------------------------------

    def calendar_for(self, booking_ref: str) -> list[CalendarEntry]:
        return [e for e in self.calendar.values() if e.booking_ref == booking_ref]

    def scc_for(self, booking_ref: str) -> list[SccEvent]:
        return [e for e in self.scc_events.values() if e.booking_ref == booking_ref]

    def mail_to(self, address: str, kind: str | None = None) -> list[Email]:
        return [m for m in self.sent if m.to == address and (kind is None or m.kind == kind)]

    def mail_of(self, kind: str) -> list[Email]:
        return [m for m in self.sent if m.kind == kind]

    def alerts(self) -> list[Email]:
        return self.mail_of("ops-alert")

    def texts_to(self, phone: str, kind: str | None = None) -> list[Text]:
        return [t for t in self.texted if t.to == phone and (kind is None or t.kind == kind)]

    def page_on(self, brand: str, slug: str) -> GuestPage | None:
        return self.sites.get(brand, {}).get(slug)

    def _brand(self, name: str | None) -> Brand | None:
        """The request's brand (None: the booking's own URL, as before brands); unknown: the
        same permanent failure as a worker that lacks it."""
        if name is None:
            return None
        try:
            return BRANDS.get(name)
        except BrandError as exc:
            raise needs_operator(
                str(exc), "add the brand to CHARTERS_BRANDS on every worker", subject=name
            ) from None

    def _put_page(
        self,
        brand: Brand | None,
        charter: CrewView,
        content: bytes,
        cancelled: bool = False,
        moved_to: str | None = None,
    ) -> GuestPageRef:
        url = brand.page_url(charter.slug) if brand else charter.guest_page_url
        digest = hashlib.sha256(content).hexdigest()
        page = GuestPage(
            slug=charter.slug,
            content_sha256=digest,
            cancelled=cancelled,
            starts_at=charter.starts_at.isoformat(),
            url=url,
            moved_to=moved_to,
            crew=[seat.name for seat in charter.seats],
        )
        self.sites.setdefault(brand.name if brand else "", {})[charter.slug] = page
        return GuestPageRef(
            bucket=brand.bucket if brand else "guest-site",
            key=brand.page_key(charter.slug) if brand else f"guest-pages/{charter.slug}.html",
            url=url,
            content_sha256=digest,
        )

    def _invalidate(self, brand: Brand | None, reference: str, slug: str) -> InvalidationRef:
        known = self.invalidations.get(reference)
        if known is not None:
            return known
        paths = (
            brand.invalidation_paths(slug)
            if brand
            else [f"/g/{slug}", f"/g/{slug}/", f"/guest-pages/{slug}.html"]
        )
        made = InvalidationRef(
            invalidation_id=self._new_id("inv"), paths=paths, caller_reference=reference
        )
        self.invalidations[reference] = made
        self.effects["invalidate"] += 1
        return made

    # ---- the activities --------------------------------------------------------------------

    def activities(self) -> list[Callable[..., Any]]:
        world = self

        @activity.defn(name=Activity.VALIDATE_BOOKING)
        async def validate_booking(raw: dict[str, Any]) -> Booking:
            """The product's own validation (pure: the booking model and the wall clock)."""
            await world._enter(Activity.VALIDATE_BOOKING)
            roster: Any = MemoryRoster(world.roster)
            return validation.validate_booking(raw, cast(CrewRoster, roster))

        @activity.defn(name=Activity.CREATE_CALENDAR_ENTRY)
        async def create_calendar_entry(req: CalendarEntryRequest) -> CalendarEntryRef:
            await world._enter(Activity.CREATE_CALENDAR_ENTRY)
            for entry in world.calendar.values():
                if entry.idempotency_key == req.idempotency_key:
                    return CalendarEntryRef(entry_id=entry.entry_id, created=False)
            entry = CalendarEntry(
                entry_id=world._new_id("cal"),
                idempotency_key=req.idempotency_key,
                booking_ref=req.booking.booking_ref,
                status=req.status,
                starts_at=req.booking.starts_at.isoformat(),
            )
            world.calendar[entry.entry_id] = entry
            world.effects["calendar.create"] += 1
            return CalendarEntryRef(entry_id=entry.entry_id, created=True)

        @activity.defn(name=Activity.UPDATE_CALENDAR_ENTRY)
        async def update_calendar_entry(req: CalendarStatusRequest) -> None:
            await world._enter(Activity.UPDATE_CALENDAR_ENTRY)
            entry = world.calendar.get(req.entry_id)
            if entry is None:
                raise needs_operator(
                    f"calendar answered HTTP 404 to PATCH /calendar/{req.entry_id}",
                    "check CHARTERS_CALENDAR_URL",
                )
            entry.status = req.status
            if req.booking is not None:
                entry.starts_at = req.booking.starts_at.isoformat()
            world.effects[f"calendar.{req.status}"] += 1

        @activity.defn(name=Activity.CANCEL_CALENDAR_ENTRY)
        async def cancel_calendar_entry(req: CalendarCancelRequest) -> CompensationResult:
            await world._enter(Activity.CANCEL_CALENDAR_ENTRY)
            found = [
                e
                for e in world.calendar.values()
                if e.idempotency_key == req.idempotency_key or e.entry_id == req.entry_id
            ]
            for entry in found:
                if entry.status != "cancelled":
                    entry.status = "cancelled"
                    world.effects["calendar.cancel"] += 1
            return CompensationResult(found=[e.entry_id for e in found])

        @activity.defn(name=Activity.CHECK_SCC_SERVICE_KEY)
        async def check_scc_service_key() -> SccKeyCheck:
            await world._enter(Activity.CHECK_SCC_SERVICE_KEY)
            return SccKeyCheck(ok=world.scc_key == "ok", reason=world.scc_key)

        @activity.defn(name=Activity.AWAIT_SCC_SERVICE_KEY)
        async def await_scc_service_key() -> SccKeyCheck:
            await world._enter(Activity.AWAIT_SCC_SERVICE_KEY)
            if world.scc_key != "ok":
                raise ApplicationError(
                    f"SERVICE_KEY_HASH is {world.scc_key}; waiting for it to be fixed",
                    type="SccKeyNotFixed",
                )
            return SccKeyCheck(ok=True, reason="ok")

        @activity.defn(name=Activity.REPAIR_SCC_SERVICE_KEY_HASH)
        async def repair_scc_service_key_hash() -> SccKeyCheck:
            await world._enter(Activity.REPAIR_SCC_SERVICE_KEY_HASH)
            world.scc_key = "ok"
            world.effects["scc.repair"] += 1
            return SccKeyCheck(ok=True, reason="ok")

        def scc_auth() -> None:
            if world.scc_key != "ok":
                raise ApplicationError(
                    "SCC rejected the service key", type=errors.SCC_AUTH_REJECTED
                )

        @activity.defn(name=Activity.CREATE_SCC_EVENT)
        async def create_scc_event(req: SccEventRequest) -> SccEventRef:
            await world._enter(Activity.CREATE_SCC_EVENT)
            scc_auth()
            for event in world.scc_events.values():
                if event.idempotency_key == req.idempotency_key:
                    return SccEventRef(event_id=event.event_id, created=False)
            event = SccEvent(
                event_id=world._new_id("scc"),
                idempotency_key=req.idempotency_key,
                booking_ref=req.charter.booking_ref,
                starts_at=req.charter.starts_at.isoformat(),
                guest_page_url=req.charter.guest_page_url,
                crew=[seat.id for seat in req.charter.seats],
            )
            world.scc_events[event.event_id] = event
            world.effects["scc.create"] += 1
            return SccEventRef(event_id=event.event_id, created=True)

        @activity.defn(name=Activity.UPDATE_SCC_EVENT)
        async def update_scc_event(req: SccUpdateRequest) -> None:
            await world._enter(Activity.UPDATE_SCC_EVENT)
            scc_auth()
            event = world.scc_events.get(req.event_id)
            if event is None:
                raise needs_operator(
                    f"SCC answered HTTP 404 to PATCH /events/{req.event_id}",
                    "check CHARTERS_SCC_API_URL",
                )
            event.status = req.status
            event.starts_at = req.charter.starts_at.isoformat()
            event.guest_page_url = req.charter.guest_page_url
            event.crew = [seat.id for seat in req.charter.seats]
            world.effects[f"scc.{req.status}"] += 1

        @activity.defn(name=Activity.CANCEL_SCC_EVENT)
        async def cancel_scc_event(req: SccCancelRequest) -> CompensationResult:
            await world._enter(Activity.CANCEL_SCC_EVENT)
            scc_auth()
            found = [
                e
                for e in world.scc_events.values()
                if e.idempotency_key == req.idempotency_key or e.event_id == req.event_id
            ]
            for event in found:
                if event.status != "cancelled":
                    event.status = "cancelled"
                    world.effects["scc.cancel"] += 1
            return CompensationResult(found=[e.event_id for e in found])

        @activity.defn(name=Activity.REDACT_SCC_REVENUE)
        async def redact_scc_revenue(req: RedactionRequest) -> RedactionResult:
            await world._enter(Activity.REDACT_SCC_REVENUE)
            event = world.scc_events.get(req.event_id)
            if event is not None:
                event.redacted = True
            return RedactionResult(changed=event is not None, fields=[])

        @activity.defn(name=Activity.PUBLISH_GUEST_PAGE)
        async def publish_guest_page(req: GuestPageRequest) -> GuestPageRef:
            """Deterministic content: the same request puts the same bytes, on its brand's
            site."""
            await world._enter(Activity.PUBLISH_GUEST_PAGE)
            brand = world._brand(req.brand)
            page = world._put_page(
                brand, req.charter, req.model_dump_json().encode(), req.cancelled
            )
            world.pages[req.charter.slug] = world.sites[brand.name if brand else ""][
                req.charter.slug
            ]
            world.effects["page.notice" if req.cancelled else "page.publish"] += 1
            return page

        @activity.defn(name=Activity.INVALIDATE_GUEST_PAGE)
        async def invalidate_guest_page(req: InvalidationRequest) -> InvalidationRef:
            await world._enter(Activity.INVALIDATE_GUEST_PAGE)
            brand = world._brand(req.brand)
            reference = f"{req.idempotency_key}:{req.content_sha256[:32]}"
            return world._invalidate(brand, reference, req.slug)

        @activity.defn(name=Activity.MOVE_GUEST_PAGE)
        async def move_guest_page(req: MovePageRequest) -> MovePageResult:
            """The new page first, then the notice at the old URL linking to it, then both
            invalidations (new site's first); every write deterministic."""
            await world._enter(Activity.MOVE_GUEST_PAGE)
            old = world._brand(req.from_brand) or BRANDS.get(None)
            new = world._brand(req.to_brand)
            assert new is not None
            charter = req.charter
            page = world._put_page(new, charter, charter.model_dump_json().encode())
            notice_body = f"moved:{page.url}".encode()
            old_charter = charter.model_copy(update={"guest_page_url": old.page_url(charter.slug)})
            notice = world._put_page(old, old_charter, notice_body, moved_to=page.url)
            world.pages[charter.slug] = world.sites[new.name][charter.slug]
            world.effects["page.move"] += 1
            invalidations = [
                world._invalidate(
                    new, f"{req.idempotency_key}:new:{page.content_sha256[:32]}", charter.slug
                ),
                world._invalidate(
                    old, f"{req.idempotency_key}:old:{notice.content_sha256[:32]}", charter.slug
                ),
            ]
            return MovePageResult(page=page, notice=notice, invalidations=invalidations)

        @activity.defn(name=Activity.PUBLISH_PHOTO_ALBUM)
        async def publish_photo_album(req: AlbumRequest) -> AlbumRef:
            await world._enter(Activity.PUBLISH_PHOTO_ALBUM)
            photos = sorted(world.photos.get(req.event_id, []))
            slug = album_slug(req.charter.slug)
            body = "\n".join([req.charter.slug, *photos]).encode()
            album = AlbumRef(
                key=f"guest-pages/{slug}.html",
                url=req.charter.guest_page_url.rsplit("/", 1)[0] + f"/{slug}",
                photos=len(photos),
                content_sha256=hashlib.sha256(body).hexdigest(),
            )
            world.albums[slug] = album
            world.effects["album"] += 1
            return album

        def send(key: str, to: str, kind: str, subject: str, about: str) -> EmailSent:
            """The email ledger in front of SES: once per key."""
            known = world.mail.get(key)
            if known is not None:
                return EmailSent(message_id=known.message_id, duplicate=True)
            if to in world.refused:
                raise needs_operator(
                    f"SES refused the message: MessageRejected (to {about})",
                    SES_REFUSED_FIX,
                    subject=about,
                )
            email = Email(key, to, kind, subject, world._new_id("msg"))
            world.mail[key] = email
            world.sent.append(email)
            world.effects[f"email.{kind}"] += 1
            return EmailSent(message_id=email.message_id, duplicate=False)

        @activity.defn(name=Activity.SEND_CREW_EMAIL)
        async def send_crew_email(req: CrewEmailRequest) -> EmailSent:
            await world._enter(Activity.SEND_CREW_EMAIL)
            new = req.idempotency_key not in world.mail
            if new and req.only_if_sent and not any(k in world.mail for k in req.only_if_sent):
                return EmailSent(message_id="", duplicate=False, skipped=True)
            subject = f"{req.kind}: {req.charter.booking_ref} on {req.charter.starts_at:%Y-%m-%d}"
            return send(req.idempotency_key, req.member.email, req.kind, subject, req.member.id)

        @activity.defn(name=Activity.SEND_CREW_SMS)
        async def send_crew_sms(req: CrewSmsRequest) -> SmsSent:
            """The effect ledger in front of SNS: once per `sms:` key."""
            await world._enter(Activity.SEND_CREW_SMS)
            member = req.member
            if not member.sms or not member.phone:
                return SmsSent(message_id="", duplicate=False, skipped=True)
            if req.only_if_sent and not any(k in world.texts for k in req.only_if_sent):
                return SmsSent(message_id="", duplicate=False, skipped=True)
            world._brand(req.brand)
            known = world.texts.get(req.idempotency_key)
            if known is not None:
                return SmsSent(message_id=known.message_id, duplicate=True)
            if member.phone in world.opted_out:
                return SmsSent(message_id="", duplicate=False, opted_out=True)
            if member.phone in world.refused_phones:
                raise needs_operator(
                    "SNS refused the text: InvalidParameter (PhoneNumber)",
                    SNS_REFUSED_FIX,
                    subject=f"sms:{member.id}",
                )
            charter = req.charter
            body = f"{member.first_name}: {req.kind} {charter.booking_ref} {charter.guest_page_url}"
            text = Text(req.idempotency_key, member.phone, req.kind, body, world._new_id("sms"))
            world.texts[req.idempotency_key] = text
            world.texted.append(text)
            world.effects[f"sms.{req.kind}"] += 1
            return SmsSent(message_id=text.message_id, duplicate=False, segments=1)

        @activity.defn(name=Activity.SEND_GUEST_EMAIL)
        async def send_guest_email(req: GuestEmailRequest) -> EmailSent:
            await world._enter(Activity.SEND_GUEST_EMAIL)
            subject = f"guest-{req.kind}: {req.charter.booking_ref} on {req.charter.starts_at:%F}"
            if req.moved_from:
                subject += f" moved from {req.moved_from} to {req.charter.guest_page_url}"
            if req.album_url:
                subject += f" album {req.album_url}"
            return send(req.idempotency_key, req.guest_email, f"guest-{req.kind}", subject, "guest")

        @activity.defn(name=Activity.SEND_CAPTAIN_SUMMARY)
        async def send_captain_summary(req: CaptainSummaryRequest) -> EmailSent:
            await world._enter(Activity.SEND_CAPTAIN_SUMMARY)
            names = ", ".join(a.name for a in req.confirmations if a.answer == "accepted")
            subject = f"Confirmed: {req.booking.booking_ref} ({names})"
            return send(
                req.idempotency_key,
                req.booking.captain.email,
                "captain-summary",
                subject,
                req.booking.captain.id,
            )

        @activity.defn(name=Activity.ALERT_OPERATIONS)
        async def alert_operations(req: OperationsAlertRequest) -> EmailSent:
            await world._enter(Activity.ALERT_OPERATIONS)
            return send(
                req.idempotency_key,
                OPERATIONS,
                "ops-alert",
                f"{req.subject}\n{req.body}",
                "operations",
            )

        return [
            validate_booking,
            create_calendar_entry,
            update_calendar_entry,
            cancel_calendar_entry,
            check_scc_service_key,
            await_scc_service_key,
            repair_scc_service_key_hash,
            create_scc_event,
            update_scc_event,
            cancel_scc_event,
            redact_scc_revenue,
            publish_guest_page,
            invalidate_guest_page,
            move_guest_page,
            publish_photo_album,
            send_crew_email,
            send_crew_sms,
            send_guest_email,
            send_captain_summary,
            alert_operations,
        ]


OPERATIONS = "ops@sailjada.com"
