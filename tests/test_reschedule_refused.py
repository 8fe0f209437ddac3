"""A reschedule the owner's calendar refuses for good: the booking keeps its date, its links and
its answers; `status` says why and operations are told once."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from charters_dev.stack import DevStack

from charters import contract
from charters.actions import act, settled
from charters.models import Reschedule
from tests.conftest import Booker
from tests.support import booking_data, calendar_entries, follow_link, mail_for
from tests.test_transient_faults import faults  # noqa: F401 - fixture


async def test_calendar_refusing_a_reschedule_keeps_the_booking_whole(
    faults: DevStack,  # noqa: F811
    booker: Booker,
) -> None:
    settings = booker.settings
    data = booking_data()
    ref = data["booking_ref"]
    handle = await booker.start(data)
    await booker.wait_stage(handle.id, "awaiting-crew")
    links = [m.magic_links()["accept"] for m in mail_for(settings, ref) if m.magic_links()]
    await asyncio.to_thread(follow_link, links[0], "accept")
    before = await booker.status(handle.id)

    faults.set_faults("calendar", "error=1,kinds=400")
    moved = datetime.fromisoformat(data["starts_at"]) + timedelta(days=3)
    verdict = await act(
        booker.client, handle.id, contract.UPDATE_RESCHEDULE, Reschedule(starts_at=moved)
    )
    assert verdict.recorded, verdict.message

    async def refused() -> bool:
        return "refused by the calendar" in ((await booker.status(handle.id)).error or "")

    for _ in range(150):
        if await refused():
            break
        await asyncio.sleep(0.2)
    faults.set_faults("calendar", "")
    after = await booker.status(handle.id)
    assert "refused by the calendar" in (after.error or "") and "HTTP 400" in (after.error or "")
    assert after.round == before.round == 1
    assert after.charter == before.charter, "same date, same page"
    assert [a.answer for a in after.crew] == [a.answer for a in before.crew]
    assert calendar_entries(settings, ref)[0]["date"] == data["starts_at"][:10]
    alerts = [m for m in mail_for(settings, ref) if m.to == [settings.operations_email]]
    assert len(alerts) == 1 and "reschedule refused" in alerts[0].subject
    assert not [m for m in mail_for(settings, ref) if m.subject.startswith("Rescheduled:")]

    for link in links[1:]:  # the old links still work: nothing moved
        response = await asyncio.to_thread(follow_link, link, "accept")
        assert response.status_code == 200
    assert (await settled(handle, 60)).outcome == "confirmed"
