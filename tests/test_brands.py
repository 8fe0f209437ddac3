"""Two brands in one deployment, at the activity level through the worker's own wiring, against
the session stack's moto: each booking's page in its brand's bucket under its scheme, each
invalidation on its brand's distribution with that scheme's paths, each email from its brand's
sender in its look; a cancellation touches only its brand; a move leaves a notice behind."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError

from charters import errors
from charters.brands import Brand, BrandBook, BrandError, read_brands
from charters.models import (
    Booking,
    CrewEmailRequest,
    CrewView,
    GuestEmailRequest,
    GuestPageRef,
    GuestPageRequest,
    InvalidationRef,
    InvalidationRequest,
    MovePageRequest,
    MovePageResult,
)
from charters.settings import Settings
from charters.worker import wiring
from charters.worker.wiring import AwsClients
from tests.support import REVENUE_STRINGS, attempt, booking_data, mail_for, new_ref

QUEEN, JADA = "queenofsandiego.com", "sailjada.com"
Acts = dict[str, Callable[..., Any]]


@pytest.fixture(scope="module")
def acts(settings: Settings) -> Acts:
    """The worker's activities, built by wiring from the stack's settings, by activity name."""
    built = wiring.activities(settings, wiring.aws_clients(settings), wiring.http_client())
    return {fn.__name__: fn for fn in built}


@pytest.fixture(scope="module")
def brands(settings: Settings) -> BrandBook:
    return settings.brand_book()


def run(settings: Settings, fn: Callable[..., Any], arg: Any) -> Any:
    return attempt(settings.activity_timeout_seconds).run(fn, arg)


def book(settings: Settings, acts: Acts, brand: str | None) -> tuple[Booking, CrewView]:
    data = booking_data(new_ref("B"))
    if brand is not None:
        data["brand"] = brand
    booking: Booking = run(settings, acts["validate_booking"], data)
    return booking, booking.crew_view(settings.guest_page_url(booking.page_slug, booking.brand))


def page_text(aws: AwsClients, bucket: str, key: str) -> str:
    return str(aws.s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode())


def invalidated(aws: AwsClients, brand: Brand, ref: InvalidationRef) -> list[str]:
    got = aws.cloudfront.get_invalidation(
        DistributionId=brand.distribution_id, Id=ref.invalidation_id
    )
    return list(got["Invalidation"]["InvalidationBatch"]["Paths"]["Items"])


def invalidation_count(aws: AwsClients, brand: Brand) -> int:
    """Every invalidation on the brand's distribution, over every page of the listing."""
    pages = aws.cloudfront.get_paginator("list_invalidations").paginate(
        DistributionId=brand.distribution_id
    )
    return sum(int(page["InvalidationList"]["Quantity"]) for page in pages)


def test_the_local_stack_seeds_the_briefs_two_brands(settings: Settings, brands: BrandBook) -> None:
    queen, jada = brands.get(QUEEN), brands.get(JADA)
    assert brands.default == QUEEN and brands.get(None) == queen
    assert (queen.path_scheme, jada.path_scheme) == ("rewrite", "plain")
    assert queen.bucket != jada.bucket and queen.distribution_id != jada.distribution_id
    assert queen.page_url("may-30-x") == f"{settings.guest_site_url}/g/may-30-x"
    assert jada.page_url("may-30-x") == "https://sailjada.com/charters/may-30-x.html"
    assert jada.invalidation_paths("may-30-x") == ["/charters/may-30-x.html"]


@pytest.mark.parametrize("brand", [QUEEN, JADA])
def test_a_booking_follows_its_brand(
    settings: Settings, aws: AwsClients, acts: Acts, brands: BrandBook, brand: str
) -> None:
    booking, charter = book(settings, acts, brand)
    site = brands.get(brand)
    assert booking.brand == brand

    page: GuestPageRef = run(
        settings,
        acts["publish_guest_page"],
        GuestPageRequest(charter=charter, event_id="evt-1", brand=brand),
    )
    assert (page.bucket, page.key) == (site.bucket, site.page_key(charter.slug))
    assert page.url == site.page_url(charter.slug)
    html = page_text(aws, site.bucket, page.key)
    assert site.look.display_name in html
    assert not any(amount in html for amount in REVENUE_STRINGS)
    if site.look.custom_colours:
        assert f"--sea:{site.look.accent}" in html

    inv: InvalidationRef = run(
        settings,
        acts["invalidate_guest_page"],
        InvalidationRequest(
            idempotency_key=f"charter-{booking.booking_ref}:page",
            slug=charter.slug,
            content_sha256=page.content_sha256,
            brand=brand,
        ),
    )
    assert sorted(invalidated(aws, site, inv)) == sorted(site.invalidation_paths(charter.slug))

    run(
        settings,
        acts["send_guest_email"],
        GuestEmailRequest(
            idempotency_key=f"charter-{booking.booking_ref}:guest-reminder",
            guest_email=booking.guest.email,
            charter=charter,
            kind="reminder",
            hours_before=72,
            brand=brand,
        ),
    )
    run(
        settings,
        acts["send_crew_email"],
        CrewEmailRequest(
            idempotency_key=f"charter-{booking.booking_ref}:invite:crew-1",
            workflow_id=f"charter-{booking.booking_ref}",
            member=booking.crew[0],
            role="crew",
            charter=charter,
            brand=brand,
        ),
    )
    mails = mail_for(settings, booking.booking_ref)
    assert len(mails) == 2
    for mail in mails:
        assert mail.sender == site.sender
        assert site.look.display_name in mail.body
        assert site.page_url(charter.slug) in mail.body


def test_cancelling_one_brands_booking_touches_only_its_site(
    settings: Settings, aws: AwsClients, acts: Acts, brands: BrandBook
) -> None:
    published: dict[str, tuple[Booking, CrewView, GuestPageRef]] = {}
    for brand in (QUEEN, JADA):
        booking, charter = book(settings, acts, brand)
        page = run(
            settings,
            acts["publish_guest_page"],
            GuestPageRequest(charter=charter, event_id="evt-2", brand=brand),
        )
        published[brand] = (booking, charter, page)
    queen = brands.get(QUEEN)
    queen_page = published[QUEEN][2]
    queen_before = aws.s3.head_object(Bucket=queen.bucket, Key=queen_page.key)["ETag"]
    queen_invalidations = invalidation_count(aws, queen)

    booking, charter, _ = published[JADA]
    jada = brands.get(JADA)
    notice = run(
        settings,
        acts["publish_guest_page"],
        GuestPageRequest(charter=charter, event_id="evt-2", cancelled=True, brand=JADA),
    )
    run(
        settings,
        acts["invalidate_guest_page"],
        InvalidationRequest(
            idempotency_key=f"charter-{booking.booking_ref}:page",
            slug=charter.slug,
            content_sha256=notice.content_sha256,
            brand=JADA,
        ),
    )
    assert "has been cancelled" in page_text(aws, jada.bucket, notice.key)
    assert aws.s3.head_object(Bucket=queen.bucket, Key=queen_page.key)["ETag"] == queen_before
    assert invalidation_count(aws, queen) == queen_invalidations


def test_moving_a_booking_from_the_older_site_to_the_newer(
    settings: Settings, aws: AwsClients, acts: Acts, brands: BrandBook
) -> None:
    booking, charter = book(settings, acts, JADA)
    jada, queen = brands.get(JADA), brands.get(QUEEN)
    run(
        settings,
        acts["publish_guest_page"],
        GuestPageRequest(charter=charter, event_id="evt-3", brand=JADA),
    )
    request = MovePageRequest(
        idempotency_key=f"charter-{booking.booking_ref}:move:{QUEEN}",
        charter=charter,
        event_id="evt-3",
        from_brand=JADA,
        to_brand=QUEEN,
    )
    moved: MovePageResult = run(settings, acts["move_guest_page"], request)
    new_url = queen.page_url(charter.slug)
    assert (moved.page.bucket, moved.page.url) == (queen.bucket, new_url)
    assert "Welcome aboard" in page_text(aws, queen.bucket, queen.page_key(charter.slug))
    old = page_text(aws, jada.bucket, jada.page_key(charter.slug))
    assert "has moved" in old and f'href="{new_url}"' in old
    assert moved.notice.url == jada.page_url(charter.slug)
    new_inv, old_inv = moved.invalidations
    assert sorted(invalidated(aws, queen, new_inv)) == sorted(
        queen.invalidation_paths(charter.slug)
    )
    assert invalidated(aws, jada, old_inv) == jada.invalidation_paths(charter.slug)
    again: MovePageResult = run(settings, acts["move_guest_page"], request)
    assert [i.caller_reference for i in again.invalidations] == [
        i.caller_reference for i in moved.invalidations
    ]

    told = GuestEmailRequest(
        idempotency_key=f"charter-{booking.booking_ref}:guest-moved:{QUEEN}",
        guest_email=booking.guest.email,
        charter=charter,
        kind="moved",
        brand=QUEEN,
        moved_from=jada.page_url(charter.slug),
    )
    first = run(settings, acts["send_guest_email"], told)
    second = run(settings, acts["send_guest_email"], told)
    assert second.duplicate and second.message_id == first.message_id
    mails = mail_for(settings, booking.booking_ref)
    assert len(mails) == 1 and mails[0].sender == queen.sender and new_url in mails[0].body


def test_an_unknown_brand_fails_validation_naming_the_field(settings: Settings, acts: Acts) -> None:
    data = booking_data(new_ref("B"), brand="nosuchbrand.com")
    with pytest.raises(ApplicationError) as raised:
        run(settings, acts["validate_booking"], data)
    assert raised.value.type == errors.INVALID_BOOKING and raised.value.non_retryable
    assert "brand: 'nosuchbrand.com' is not a configured brand" in raised.value.message
    assert "\n" not in raised.value.message


def test_a_booking_naming_no_brand_keeps_the_default_it_was_validated_with(
    settings: Settings, acts: Acts, brands: BrandBook
) -> None:
    booking, charter = book(settings, acts, None)
    assert booking.brand == brands.default
    assert charter.guest_page_url == brands.get(None).page_url(booking.page_slug)


def test_the_brand_configuration_is_refused_with_the_field_named(tmp_path: Any) -> None:
    path = tmp_path / "brands.yaml"
    path.write_text(
        "brands:\n  example.com:\n    site_url: https://example.com\n    bucket: example.com\n"
        "    distribution_id: E1\n    sender: not-an-address\n"
    )
    with pytest.raises(BrandError, match="brand example.com: sender"):
        read_brands(str(path))
    path.write_text(path.read_text().replace("not-an-address", "bookings@example.com"))
    (brand,) = read_brands(str(path))
    assert brand.name == "example.com" and brand.path_scheme == "rewrite"
    with pytest.raises(BrandError, match="default brand 'other.com'"):
        Settings(brands=str(path), default_brand="other.com").brand_book()


def test_without_brands_the_single_site_settings_are_the_default_brand() -> None:
    settings = Settings(
        profile="aws",
        brands=None,
        default_brand=None,
        guest_bucket="b.example",
        guest_site_url="https://site.example",
        distribution_id="EXYZ",
        mail_from="hi@site.example",
    )
    only = settings.brand_book()
    assert only.names == ["site.example"]
    brand = only.get(None)
    assert (brand.bucket, brand.distribution_id, brand.sender) == (
        "b.example",
        "EXYZ",
        "hi@site.example",
    )
    assert settings.guest_page_url("s") == "https://site.example/g/s"


def test_a_brands_own_colours_are_one_style_block_whose_hash_charters_brands_prints(
    settings: Settings, aws: AwsClients, acts: Acts, brands: BrandBook
) -> None:
    """The default look adds no style (the template's CSP holds); a brand with its own colours
    adds one block, the same for every page of that brand, whose hash is `style_hash()`."""
    from charters_dev.edge import inline_hashes

    for name in (QUEEN, JADA):
        site = brands.get(name)
        _, charter = book(settings, acts, name)
        page = run(
            settings,
            acts["publish_guest_page"],
            GuestPageRequest(charter=charter, event_id="evt-4", brand=name),
        )
        _, styles = inline_hashes(page_text(aws, site.bucket, page.key))
        expected = site.look.style_hash()
        assert len(styles) == (2 if expected else 1)
        if expected:
            assert styles[-1] == expected


def test_charters_list_filters_by_the_brand_search_attribute() -> None:
    from charters import contract
    from charters.starter.listing import visibility_query

    query = visibility_query(brand=JADA)
    assert f"{contract.SA_BRAND.name} = 'sailjada.com'" in query
    with pytest.raises(ValueError, match="--brand"):
        visibility_query(brand="x' OR '1'='1")
