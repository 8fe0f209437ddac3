"""Properties, checked with Hypothesis over generated inputs: revenue redaction, the slug rule,
HTML escaping of guest names, and magic-link tokens."""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from markupsafe import escape
from pydantic import ValidationError

from charters import magic_links
from charters.models import Booking, CrewSeat, CrewView, album_slug
from charters.pages import render
from charters.redaction import redact
from charters.starter.book import with_page_slug

PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---- revenue redaction ----------------------------------------------------------------------

amounts = st.decimals(
    min_value=Decimal("0.01"),
    max_value=Decimal("9999999.99"),
    places=2,
    allow_nan=False,
    allow_infinity=False,
)

LABELS = ("Revenue", "Gross", "Net", "Payout", "Earnings", "Income", "revenue", "GROSS")
LABEL_WORDS = re.compile(r"revenue|gross|net|payout|earnings|income", re.IGNORECASE)


def formats(amount: Decimal) -> list[str]:
    """The ways an amount shows up in text people write."""
    plain = f"{amount:.2f}"
    grouped = f"{amount:,.2f}"
    return [f"${plain}", plain, f"${grouped}", grouped, f"$ {grouped}"]


# Surrounding text: letters, digits, punctuation, whitespace and a little non-ASCII, often
# ending (before the amount) or starting (after it) with a separator.
_chars = st.text(
    alphabet=st.sampled_from(string.ascii_letters + string.digits + " \n\t.,:;|$()-/€éü"),
    max_size=40,
)
_joints = st.sampled_from(["", " ", ",", ".", ":", ";", "(", ")", "|", "\n", "=", "-", "/", "$"])
filler = st.builds(lambda a, b: a + b, _chars, _joints)
suffix_filler = st.builds(lambda a, b: a + b, _joints, _chars)


def separable(prefix: str, suffix: str) -> bool:
    """The amount stands on its own: not glued to a longer number on either side (`1` + `840.75`
    is 1840.75, `840.75` + `1` is 840.751; `7,` + `840.75` reads as 7,840.75). A separator after
    a word is no glue: `Price,840.75` shows 840.75."""
    if prefix and prefix[-1] in string.digits:
        return False
    if len(prefix) >= 2 and prefix[-1] in ".," and prefix[-2] in string.digits:
        return False
    return not (suffix and suffix[0] in string.digits)


def visible_amounts(text: str, amount: Decimal) -> list[str]:
    """Every occurrence of the amount (any format) as a number of its own in `text`."""
    found = []
    for shown in {f"{amount:.2f}", f"{amount:,.2f}"}:
        for m in re.finditer(re.escape(shown), text):
            before = text[: m.start()]
            after = text[m.end() :]
            if separable(before, after):
                found.append(shown)
    return found


@PROPS
@given(
    amount=amounts,
    others=st.lists(amounts, max_size=3),
    shape=st.integers(0, 4),
    labelled=st.booleans(),
    label=st.sampled_from(LABELS),
    sep=st.sampled_from([": ", ":", " = ", "="]),
    prefix=filler,
    suffix=suffix_filler,
)
@example(
    amount=Decimal("289.41"),
    others=[],
    shape=1,
    labelled=False,
    label="Net",
    sep=": ",
    prefix="Price,",
    suffix="",
)
@example(
    amount=Decimal("1289.41"),
    others=[],
    shape=3,
    labelled=False,
    label="Net",
    sep=": ",
    prefix="total.",
    suffix=",",
)
def test_redaction_leaves_no_booking_amount(
    amount: Decimal,
    others: list[Decimal],
    shape: int,
    labelled: bool,
    label: str,
    sep: str,
    prefix: str,
    suffix: str,
) -> None:
    shown = formats(amount)[shape]
    assume(separable(prefix, suffix))
    body = f"{label}{sep}{shown}" if labelled else shown
    text = f"{prefix}{body}{suffix}"
    out = redact(text, [*others, amount])
    assert visible_amounts(out, amount) == [], (text, out)


@PROPS
@given(text=st.text(max_size=200), amounts_=st.lists(amounts, min_size=1, max_size=4))
@example(
    text="Guest: Boatsetter Guest | Party of 6 | Birthday celebration", amounts_=[Decimal("840.75")]
)
@example(text="Tip $84 and 40.7 knots, 1,840.75 miles", amounts_=[Decimal("840.75")])
def test_redaction_leaves_text_without_amounts_or_labels_exactly_as_it_was(
    text: str, amounts_: list[Decimal]
) -> None:
    assume(not LABEL_WORDS.search(text))
    for amount in amounts_:
        whole = f"{amount:.2f}".split(".")[0]
        assume(whole not in text and f"{int(whole):,}" not in text)
    assert redact(text, amounts_) == text


@PROPS
@given(amount=amounts, label=st.sampled_from(LABELS), other=amounts)
def test_labelled_revenue_clause_is_removed_whatever_the_amount(
    amount: Decimal, label: str, other: Decimal
) -> None:
    """`Revenue: $X` goes even when X is not one of the booking's amounts."""
    text = f"Party of 6 | {label}: ${amount:,.2f} | Birthday"
    out = redact(text, [other])
    assert f"{amount:,.2f}" not in out and f"{amount:.2f}" not in out
    assert out == "Party of 6 | Birthday"


# ---- the slug rule ----------------------------------------------------------------------------

SLUG = re.compile(r"[a-z0-9-]{1,64}")


def booking_with_slug(slug: Any) -> dict[str, Any]:
    starts = (datetime.now() + timedelta(days=30)).replace(microsecond=0)
    return {
        "booking_ref": "XHQGMDH",
        "slug": slug,
        "starts_at": starts.isoformat(),
        "duration_hours": "3",
        "location": "Sheraton Marina",
        "guest": {"name": "Guest", "email": "guest@example.com", "party_size": 2},
        "captain": {"id": "cap", "name": "Sam", "email": "sam@example.com", "hourly_rate": "50"},
        "money": {"gross": "1000.00"},
    }


def slug_accepted(slug: str) -> bool:
    try:
        Booking.model_validate(booking_with_slug(slug))
    except ValidationError:
        return False
    return True


slug_like = st.one_of(
    st.text(max_size=70),
    st.text(alphabet=string.ascii_letters + string.digits + "-./_\n%", max_size=70),
    st.builds(
        lambda a, b, sep: f"{a}{sep}{b}",
        st.from_regex(SLUG, fullmatch=True),
        st.from_regex(SLUG, fullmatch=True),
        st.sampled_from(["/", "..", "/../", "\\", "%2F", "\n", "A"]),
    ),
)


@PROPS
@given(slug=slug_like)
@example(slug="may-30-xhqgmdh\n")
@example(slug="../etc")
@example(slug="May-30")
@example(slug="a/b")
def test_slug_rule_never_accepts_slash_dotdot_or_upper_case(slug: str) -> None:
    accepted = slug_accepted(slug)
    if "/" in slug or ".." in slug or slug != slug.lower() or "\n" in slug:
        assert not accepted, slug
    if accepted:
        assert SLUG.fullmatch(slug), slug


@PROPS
@given(slug=st.from_regex(SLUG, fullmatch=True))
def test_every_slug_of_the_rule_is_accepted(slug: str) -> None:
    assert slug_accepted(slug)


@PROPS
@given(ref=st.from_regex(r"[A-Z0-9]{4,16}", fullmatch=True), day=st.integers(1, 28))
def test_the_starters_slug_follows_the_rule(ref: str, day: int) -> None:
    """Date, reference and 16 random base32 characters, short enough that the album's
    `{slug}-photos` keeps the whole token; never the same twice."""
    data = booking_with_slug(None)
    data["booking_ref"] = ref
    starts = datetime.fromisoformat(data["starts_at"])
    data["starts_at"] = starts.replace(day=day).isoformat()
    booking = Booking.model_validate(data)
    chosen = with_page_slug(booking).page_slug
    assert SLUG.fullmatch(chosen), chosen
    month = f"{booking.starts_at:%b}".lower()
    token = chosen.rsplit("-", 1)[1]
    assert chosen == f"{month}-{day}-{ref.lower()}-{token}"
    assert re.fullmatch(r"[a-z2-7]{16}", token), token
    assert album_slug(chosen) == f"{chosen}-photos"
    assert with_page_slug(booking).page_slug != chosen
    kept = booking.model_copy(update={"slug": chosen})
    assert with_page_slug(kept).page_slug == chosen, "a slug once chosen is kept"


# ---- Jinja escaping -----------------------------------------------------------------------------


def charter_for(guest_name: str) -> CrewView:
    return CrewView(
        booking_ref="XHQGMDH",
        slug="may-30-xhqgmdh",
        starts_at=datetime(2030, 5, 30, 9, 0),
        timezone="America/Los_Angeles",
        duration_hours=Decimal("3"),
        location="Sheraton Marina",
        guest_name=guest_name,
        party_size=6,
        captain=CrewSeat(id="captain-1", name="Sam Harbor", role="captain"),
        crew=[CrewSeat(id="crew-1", name="Alex Rivera", role="crew")],
        what_to_bring=["Sunscreen"],
        notes="",
        guest_page_url="https://queenofsandiego.com/g/may-30-xhqgmdh",
    )


def guest_page(name: str) -> str:
    return render(
        "guest_page.html",
        charter=charter_for(name),
        event_id="evt-1",
        presign_url="https://scc.example/prod/g/evt-1/presign",
        ics_href="data:text/calendar,x",
    )


PLACEHOLDER = "GUESTNAMEPLACEHOLDER"
names = st.one_of(
    st.text(min_size=1, max_size=80),
    st.text(alphabet="<>&\"'/=` script onerror", min_size=1, max_size=60),
    st.sampled_from(
        [
            "<script>alert(1)</script>",
            '"><img src=x onerror=alert(1)>',
            "</h1><h1>",
            "&lt;already&gt;",
            "O'Brien & Sons",
        ]
    ),
)


@PROPS
@given(name=names)
def test_guest_name_is_always_escaped_on_the_guest_page(name: str) -> None:
    assume(PLACEHOLDER not in name)
    html = guest_page(name)
    reference = guest_page(PLACEHOLDER)
    # The page is the reference page with the escaped name where the placeholder was.
    assert html == reference.replace(PLACEHOLDER, str(escape(name)))
    assert html.count("<") == reference.count("<")


# ---- magic links ------------------------------------------------------------------------------

KEY = b"k" * 32
NOW = datetime(2030, 1, 1, tzinfo=UTC)
ids = st.text(min_size=1, max_size=80)
future = st.integers(int(NOW.timestamp()) + 1, int(NOW.timestamp()) + 10**8)


@PROPS
@given(workflow_id=ids, crew_id=ids, expires=future, round_=st.integers(1, 10**6))
def test_magic_link_sign_verify_roundtrip(
    workflow_id: str, crew_id: str, expires: int, round_: int
) -> None:
    link = magic_links.MagicLink(workflow_id, crew_id, expires, round_)
    assert magic_links.verify(KEY, magic_links.sign(KEY, link), NOW) == link


TOKEN_CHARS = string.ascii_letters + string.digits + "-_.=+/%~ "


@PROPS
@given(
    workflow_id=ids,
    crew_id=ids,
    expires=future,
    position=st.integers(0, 10_000),
    replacement=st.sampled_from(TOKEN_CHARS),
)
@example(
    workflow_id="charter-XHQGMDH",
    crew_id="crew-1",
    expires=int(NOW.timestamp()) + 3600,
    position=-1,
    replacement="B",
)
def test_any_single_character_change_of_a_token_fails(
    workflow_id: str, crew_id: str, expires: int, position: int, replacement: str
) -> None:
    token = magic_links.sign(KEY, magic_links.MagicLink(workflow_id, crew_id, expires))
    i = position % len(token)
    assume(token[i] != replacement)
    mutated = token[:i] + replacement + token[i + 1 :]
    with pytest.raises(magic_links.InvalidToken):
        magic_links.verify(KEY, mutated, NOW)


@PROPS
@given(workflow_id=ids, crew_id=ids, position=st.integers(0, 10_000))
def test_every_last_character_variant_of_a_token_fails(
    workflow_id: str, crew_id: str, position: int
) -> None:
    """Base64's last character carries unused bits: every other value of it, and `+`/`/` in
    place of `-`/`_`, must still be refused (one link, one spelling)."""
    token = magic_links.sign(
        KEY, magic_links.MagicLink(workflow_id, crew_id, int(NOW.timestamp()) + 60)
    )
    payload, mac = token.split(".")
    for variant in set(string.ascii_letters + string.digits + "-_+/") - {mac[-1]}:
        with pytest.raises(magic_links.InvalidToken):
            magic_links.verify(KEY, f"{payload}.{mac[:-1]}{variant}", NOW)
    i = position % len(payload)
    swap = {"-": "+", "_": "/"}.get(payload[i])
    if swap:
        with pytest.raises(magic_links.InvalidToken):
            magic_links.verify(KEY, f"{payload[:i]}{swap}{payload[i + 1 :]}.{mac}", NOW)


@PROPS
@given(
    workflow_id=ids,
    crew_id=ids,
    age=st.integers(0, 10**8),
)
def test_expired_tokens_fail(workflow_id: str, crew_id: str, age: int) -> None:
    expires = int(NOW.timestamp()) - age
    token = magic_links.sign(KEY, magic_links.MagicLink(workflow_id, crew_id, expires))
    with pytest.raises(magic_links.InvalidToken, match="expired"):
        magic_links.verify(KEY, token, NOW)


@PROPS
@given(workflow_id=ids, crew_id=ids, other_key=st.binary(min_size=1, max_size=64))
def test_a_token_signed_with_another_key_fails(
    workflow_id: str, crew_id: str, other_key: bytes
) -> None:
    assume(other_key != KEY)
    token = magic_links.sign(
        other_key, magic_links.MagicLink(workflow_id, crew_id, int(NOW.timestamp()) + 60)
    )
    with pytest.raises(magic_links.InvalidToken):
        magic_links.verify(KEY, token, NOW)
