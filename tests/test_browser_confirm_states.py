"""The confirmation page's states in a real browser (skips without /usr/bin/chromium): the
email's link focuses the intended answer so one press (Enter) confirms; a cancelled charter's
link shows that, with no buttons."""

from __future__ import annotations

import re
from typing import Any

from temporalio.client import Client

from charters import contract
from charters.actions import act
from charters.models import CancelBooking
from charters.settings import Settings
from tests.conftest import Booker
from tests.support import booking_data, eventually, mail_for
from tests.test_browser import browser, csp_violations, phone  # noqa: F401 - fixtures

__all__ = ["browser", "phone"]


async def email_link(settings: Settings, ref: str, address: str, decision: str) -> str:
    """The link exactly as the email holds it, `?d=` included."""

    def found() -> str | None:
        for mail in mail_for(settings, ref):
            if address in mail.to:
                hit = re.search(rf'href="([^"]*/c/[^"]+\?d={decision})"', mail.body)
                if hit:
                    return hit.group(1).replace("&amp;", "&")
        return None

    return await eventually(found, what=f"the email to {address}")


async def test_one_press_from_the_email_then_cancelled(
    booker: Booker,
    settings: Settings,
    client: Client,
    phone: Any,  # noqa: F811
) -> None:
    from playwright.async_api import expect

    data = booking_data()
    handle = await booker.start(data)
    await booker.wait_stage(handle.id, "awaiting-crew")
    link = await email_link(settings, data["booking_ref"], "alex@sailjada.com", "accept")
    response = await phone.goto(link)
    assert response is not None and response.status == 200
    focused = phone.locator("button:focus")
    await expect(focused).to_have_text(re.compile("confirm I will crew"))
    crew = (await booker.status(handle.id)).crew
    assert next(a.answer for a in crew if a.crew_id == "crew-1") == "pending"
    async with phone.expect_navigation():
        await phone.keyboard.press("Enter")
    await expect(phone.get_by_role("status")).to_contain_text("recorded: accepted")
    assert await csp_violations(phone) == []

    verdict = await act(client, handle.id, contract.UPDATE_CANCEL_BOOKING, CancelBooking())
    assert verdict.recorded, verdict
    await booker.wait_stage(handle.id, "cancelled")
    other = await email_link(settings, data["booking_ref"], "jordan@sailjada.com", "accept")
    response = await phone.goto(other)
    assert response is not None and response.status == 410
    await expect(phone.get_by_role("heading", level=1)).to_have_text("This charter was cancelled")
    await expect(phone.get_by_role("button")).to_have_count(0)
