"""Money as people write it, losses refused unless the operator says so, the captain's summary
in words and dollars, and the booking's notes on the guest page and in crew mail (escaped)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from charters_dev.isolated import sample_charter
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from charters.activities.guest_page import render_guest_page
from charters.models import (
    CaptainSummaryRequest,
    GuestPageRequest,
    MoneyIn,
    describe_validation_error,
    parse_booking,
)
from charters.pages import render

AMOUNTS = st.decimals(min_value=0, max_value=Decimal("9999999.99"), places=2)


@given(AMOUNTS)
def test_written_forms_read_to_the_same_decimal(amount: Decimal) -> None:
    forms: list[Any] = [f"${amount:,.2f}", f"{amount}", f"{amount} USD", f"{amount:,.2f} usd"]
    if Decimal(repr(float(amount))) == amount:
        forms.append(float(amount))
    for form in forms:
        assert MoneyIn(gross=form).gross == amount, form


@pytest.mark.parametrize("form", ["$1,234.56", 1234.56, "1234.56 USD", "1234.56", " $1,234.56 "])
def test_the_issue_examples(form: Any) -> None:
    assert MoneyIn(gross=form).gross == Decimal("1234.56")


@pytest.mark.parametrize("form", ["1,23.4", "$12,34", "twelve", "1.234,56", "$-5", "€12"])
def test_unreadable_amounts_are_refused_with_the_forms(form: str) -> None:
    with pytest.raises(ValidationError) as caught:
        MoneyIn(gross=form)
    assert "gross" in describe_validation_error(caught.value)
    assert "$1,234.56" in describe_validation_error(caught.value) or "greater" in str(caught.value)


def booking(**money: Any) -> dict[str, Any]:
    data = sample_charter("MONEY1")
    data["money"] = money
    return data


def test_fees_above_gross_are_refused_naming_the_fields() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_booking(booking(gross="$100", fees={"boatsetter_fee": "150"}))
    text = describe_validation_error(caught.value)
    assert "money.fees.boatsetter_fee" in text and "money.gross" in text and "allow_loss" in text


def test_negative_net_is_refused_unless_allowed() -> None:
    data = booking(gross="300", fees={"boatsetter_fee": "60"})  # pay is 3h x $100 = $300
    with pytest.raises(ValidationError, match="net -60.00"):
        parse_booking(data)
    allowed = parse_booking({**data, "allow_loss": True})
    assert allowed.financials().net == Decimal("-60.00")


def test_captain_summary_labels_fees_in_words_and_formats_money() -> None:
    data = {**booking(gross="$1,234.56", fees={"boatsetter_fee": "1,000"}), "allow_loss": True}
    data["notes"] = "Cake <b>&</b> candles"
    parsed = parse_booking(data)
    req = CaptainSummaryRequest(
        idempotency_key="k",
        booking=parsed,
        charter=parsed.crew_view("https://x/g/s"),
        confirmations=[],
    )
    html = render(
        "captain_summary.html",
        booking=req.booking,
        charter=req.charter,
        confirmations=[],
        money=req.booking.financials(),
    )
    assert "Boatsetter fee" in html and "boatsetter_fee" not in html
    assert "$1,234.56" in html and "-$1,000.00" in html and "-$65.44" in html
    assert "$-" not in html
    assert "Cake &lt;b&gt;&amp;&lt;/b&gt; candles" in html


def test_notes_reach_the_guest_page_and_crew_mail_escaped() -> None:
    data = sample_charter("NOTES1", notes="Wheelchair <script>alert(1)</script> access")
    charter = parse_booking(data).crew_view("https://x/g/s")
    escaped = "Wheelchair &lt;script&gt;alert(1)&lt;/script&gt; access"
    page = render_guest_page(GuestPageRequest(charter=charter, event_id=None), "https://scc")
    assert escaped in page and "<script>alert(1)" not in page
    member = parse_booking(data).crew[0]
    mail = render(
        "crew_email.html",
        member=member,
        role="crew",
        charter=charter,
        kind="invite",
        accept_url="https://c/x?d=accept",
        decline_url="https://c/x?d=decline",
    )
    assert escaped in mail


def test_a_booking_without_notes_shows_no_notes_section() -> None:
    charter = parse_booking(sample_charter("NOTES2", notes="")).crew_view("https://x/g/s")
    page = render_guest_page(GuestPageRequest(charter=charter, event_id=None), "https://scc")
    assert "Notes for your charter" not in page
    assert datetime.now().year <= charter.starts_at.year
