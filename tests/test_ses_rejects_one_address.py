"""SES refusing one crew member's address (as a sandbox account refuses an unverified
recipient): that seat blocks, named, with one alert; the others are asked; after the fix an
operator's retry sends that member exactly one invitation."""

from __future__ import annotations

from charters_dev.stack import DevStack

from charters import contract
from charters.actions import act, settled
from charters.models import ResolveBlock
from tests.conftest import Booker
from tests.support import booking_data, eventually, mail_for
from tests.test_transient_faults import faults  # noqa: F401 - fixture

JORDAN = "jordan@sailjada.com"


async def test_ses_rejecting_one_address_blocks_only_that_seat(
    faults: DevStack,  # noqa: F811
    booker: Booker,
) -> None:
    settings = booker.settings
    faults.set_faults("aws", f"error=1,kinds=rejected,match={JORDAN}")
    data = booking_data()
    ref = data["booking_ref"]
    handle = await booker.start(data)
    blocked = await booker.wait_blocked(handle.id, "crew-email", timeout=90)
    assert JORDAN in (blocked.blocked_reason or "") and "MessageRejected" in (
        blocked.blocked_reason or ""
    )
    assert f"charters retry {handle.id} --step crew-email:crew-2" in (blocked.blocked_fix or "")
    attrs = (await handle.describe()).typed_search_attributes
    assert attrs.get(contract.SA_BLOCKED_ON) == "crew-email", "the kind, never the address"

    def invites() -> dict[str, int]:
        found = [m for m in mail_for(settings, ref) if m.subject.startswith("Can you crew")]
        return {
            to: sum(m.to == [to] for m in found)
            for to in ("captain@sailjada.com", "alex@sailjada.com", JORDAN)
        }

    await eventually(lambda: invites()["alex@sailjada.com"] == 1, what="the others asked")
    alerts = [m for m in mail_for(settings, ref) if m.to == [settings.operations_email]]
    assert len(alerts) == 1 and "needs a person" in alerts[0].subject

    faults.set_faults("aws", "")
    verdict = await act(
        booker.client,
        handle.id,
        contract.UPDATE_RESOLVE_BLOCK,
        ResolveBlock(step="crew-email:crew-2", by="dana"),
    )
    assert verdict.recorded, verdict.message
    await eventually(lambda: invites()[JORDAN] == 1, what="Jordan's invitation")
    await booker.answer_all(ref)
    assert (await settled(handle, 60)).outcome == "confirmed"
    assert invites() == {"captain@sailjada.com": 1, "alex@sailjada.com": 1, JORDAN: 1}
    again = [m for m in mail_for(settings, ref) if m.to == [settings.operations_email]]
    assert len(again) == 1, "told once"
