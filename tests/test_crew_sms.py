"""Crew texts through SNS (moto), at the activity level through the worker's wiring: one SMS per
key however often it is asked for, none while an earlier attempt's claim may still be sending,
none to a number on the opt-out list, and a short link that opens the same confirmation page as
the email's magic link, whose answer the workflow records."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import get_args

import httpx
import pytest
from charters_dev.mailbox import Text, sent_sms
from temporalio.exceptions import ApplicationError

from charters import errors, magic_links
from charters.actions import settled
from charters.activities.ledger import EFFECT_IN_FLIGHT, EffectLedger
from charters.activities.sms import GSM_BASIC, GSM_EXTENDED, ledger_key, sms_segments, sms_text
from charters.models import (
    Booking,
    CrewMember,
    CrewSmsRequest,
    EmailKind,
    SmsSent,
)
from charters.settings import Settings
from charters.worker import wiring
from charters.worker.wiring import AwsClients
from tests.conftest import Booker
from tests.support import (
    NEWCOMER,
    attempt,
    booking_data,
    eventually,
    follow_link,
    mail_for,
    new_ref,
)

_numbers = itertools.count(1000)


def phone(ending: str = "") -> str:
    """A fresh +1 619 555 number per test (moto counts opted-out numbers as those ending 99)."""
    digits = f"{next(_numbers):04d}"
    return f"+1619555{digits[: 4 - len(ending)]}{ending}"


@pytest.fixture(scope="module")
def send(settings: Settings) -> Callable[[CrewSmsRequest], SmsSent]:
    built = wiring.activities(settings, wiring.aws_clients(settings), wiring.http_client())
    act = next(fn for fn in built if fn.__name__ == "send_crew_sms")
    return lambda req: attempt(settings.activity_timeout_seconds).run(act, req)


def texts_to(settings: Settings, number: str) -> list[Text]:
    return [t for t in sent_sms(settings.aws_endpoint_url or "") if t.to == number]


def request(
    settings: Settings, number: str | None, sms: bool = True, ref: str | None = None
) -> CrewSmsRequest:
    data = booking_data(ref or new_ref("S"))
    booking = Booking.model_validate(data)
    member = booking.crew[0].model_copy(update={"phone": number, "sms": sms})
    charter = booking.crew_view(settings.guest_page_url(booking.page_slug))
    return CrewSmsRequest(
        idempotency_key=f"charter-{booking.booking_ref}:invite:{member.id}:sms",
        workflow_id=f"charter-{booking.booking_ref}",
        member=member,
        role="crew",
        charter=charter,
    )


def test_one_text_per_key_however_often_it_is_sent(
    settings: Settings, send: Callable[[CrewSmsRequest], SmsSent]
) -> None:
    number = phone()
    req = request(settings, number)
    first, again = send(req), send(req)
    assert not first.duplicate and again.duplicate and again.message_id == first.message_id
    (text,) = texts_to(settings, number)
    assert text.id == first.message_id
    assert 1 <= first.segments <= 2 and sms_segments(text.body) == first.segments
    assert f"{settings.confirm_base_url}/s/" in text.body
    assert req.charter.booking_ref in text.body and "$" not in text.body


def test_no_second_text_while_a_dead_attempts_claim_may_still_be_sending(
    settings: Settings, aws: AwsClients, send: Callable[[CrewSmsRequest], SmsSent]
) -> None:
    """A worker killed between Publish and recording it leaves a claim and no result: within the
    lease a new attempt does not text again (it retries later, EffectInFlight)."""
    number = phone()
    req = request(settings, number)
    ledger = EffectLedger(
        aws.dynamodb,
        settings.ledger_table,
        lease_seconds=wiring.lease_seconds(settings.activity_timeout_seconds),
    )
    assert ledger.claim(ledger_key(req.idempotency_key), "sms")
    with pytest.raises(ApplicationError) as raised:
        send(req)
    assert raised.value.type == EFFECT_IN_FLIGHT and not raised.value.non_retryable
    assert texts_to(settings, number) == []


def test_an_opted_out_number_is_not_texted(
    settings: Settings, send: Callable[[CrewSmsRequest], SmsSent]
) -> None:
    number = phone("99")
    sent = send(request(settings, number))
    assert sent.opted_out and not sent.duplicate and sent.message_id == ""
    assert texts_to(settings, number) == []


def test_a_member_who_did_not_opt_in_is_not_texted(
    settings: Settings, send: Callable[[CrewSmsRequest], SmsSent]
) -> None:
    number = phone()
    assert send(request(settings, number, sms=False)).skipped
    assert texts_to(settings, number) == []


def test_a_cancellation_text_goes_only_to_a_member_who_was_texted(
    settings: Settings, send: Callable[[CrewSmsRequest], SmsSent]
) -> None:
    number = phone()
    invite = request(settings, number)
    cancel = invite.model_copy(
        update={
            "idempotency_key": invite.idempotency_key.replace(":invite:", ":cancelled:"),
            "kind": "cancelled",
            "only_if_sent": [invite.idempotency_key],
        }
    )
    assert send(cancel).skipped and texts_to(settings, number) == []
    send(invite)
    assert not send(cancel).skipped
    assert [("cancelled" in t.body) for t in texts_to(settings, number)] == [False, True]


def test_a_number_sns_refuses_asks_an_operator_naming_the_member(
    settings: Settings, send: Callable[[CrewSmsRequest], SmsSent]
) -> None:
    req = request(settings, phone())
    broken = CrewMember.model_construct(**{**dict(req.member), "phone": "+1-619-555"})
    with pytest.raises(ApplicationError) as raised:
        send(req.model_copy(update={"member": broken}))
    assert raised.value.type == errors.NEEDS_OPERATOR and raised.value.non_retryable
    assert raised.value.details[0]["subject"] == f"sms:{req.member.id}"


def test_every_kind_fits_two_segments_in_gsm(settings: Settings) -> None:
    req = request(settings, phone())
    long_place = "Sheraton San Diego Hotel & Marina, guest dock C by the café, slip 42"
    charter = req.charter.model_copy(update={"location": long_place})
    member = req.member.model_copy(update={"name": "Zoë O’Connor-Villanueva"})
    brand = settings.brand_book().get(None)
    for kind in get_args(EmailKind):
        text = sms_text(
            req.model_copy(update={"charter": charter, "member": member, "kind": kind}),
            brand,
            "https://crew.queenofsandiego.com/s/" + "x" * 60,
        )
        assert sms_segments(text) <= 2, (kind, text)
        assert all(c in GSM_BASIC or c in GSM_EXTENDED for c in text), text


async def test_the_short_link_opens_the_same_page_and_confirms(
    settings: Settings, booker: Booker, send: Callable[[CrewSmsRequest], SmsSent]
) -> None:
    ref = new_ref("S")
    handle = await booker.start(booking_data(ref))
    status = await booker.wait_stage(handle.id, "awaiting-crew")
    number = phone()
    req = request(settings, number, ref=ref).model_copy(update={"round": status.round})
    await asyncio.to_thread(send, req)
    (text,) = texts_to(settings, number)
    short = next(word for word in text.body.split() if "/s/" in word)

    with httpx.Client(timeout=15, headers={"X-Forwarded-For": "192.0.2.250"}) as http:
        opened = await asyncio.to_thread(http.get, short)
    assert opened.status_code == 303, opened.text
    location = opened.headers["location"]
    assert location.startswith("/c/")
    key = (
        wiring.aws_clients(settings)
        .secretsmanager.get_secret_value(SecretId=settings.secret_magic_link_key)["SecretString"]
        .encode()
    )
    link = magic_links.verify(key, location.removeprefix("/c/"), datetime.now(UTC))
    assert (link.workflow_id, link.crew_id, link.round) == (handle.id, "crew-1", status.round)

    answered = await asyncio.to_thread(follow_link, settings.confirm_base_url + location, "accept")
    assert answered.status_code == 200 and answered.headers["x-confirm-state"] == "recorded"
    current = await booker.status(handle.id)
    assert {a.crew_id: a.answer for a in current.crew}["crew-1"] == "accepted"


async def test_a_tampered_short_link_is_refused_like_a_tampered_token(
    settings: Settings,
) -> None:
    code = magic_links.short_code(
        b"not-the-key" * 3, magic_links.MagicLink("charter-X", "c", 2**40)
    )
    async with httpx.AsyncClient(timeout=15, headers={"X-Forwarded-For": "192.0.2.251"}) as http:
        shown = await http.get(f"{settings.confirm_base_url}/s/{code}")
    assert shown.status_code == 403 and shown.headers["x-confirm-state"] == "tampered"


async def test_a_member_replaced_after_a_texted_invitation_is_told_once_by_email_and_text(
    settings: Settings, booker: Booker
) -> None:
    """`charters assign` on the real stack: the member taken off hears it on each channel their
    invitation used, once; the newcomer is asked; nothing about it repeats once the crew confirm."""
    number = phone()
    data = booking_data(new_ref("S"))
    data["crew"][1].update(phone=number, sms=True)
    ref, replaced = data["booking_ref"], data["crew"][1]["email"]
    handle = await booker.start(data)
    await booker.wait_stage(handle.id, "awaiting-crew", timeout=90)
    await eventually(lambda: texts_to(settings, number), timeout=60, what="the invitation text")
    verdict = await booker.assign(handle.id, "crew-2", NEWCOMER)
    assert verdict.recorded, verdict.message

    def invitations() -> dict[str, str] | None:
        links = {
            m.to[0]: m.magic_links()["accept"]
            for m in mail_for(settings, ref)
            if m.magic_links() and m.to[0] != replaced
        }
        return links if len(links) == 3 else None

    for link in (await eventually(invitations, timeout=60, what="the newcomer asked")).values():
        await asyncio.to_thread(follow_link, link, "accept")
    await settled(handle, timeout=90)

    told = [m for m in mail_for(settings, ref) if m.subject.startswith("No longer needed:")]
    assert [m.to for m in told] == [[replaced]]
    texts = [t.body for t in texts_to(settings, number)]
    assert len(texts) == 2 and "no longer needed" in texts[1] and "/s/" not in texts[1]
    assert ref in texts[1] and "$" not in texts[1]
    asked = [m.to[0] for m in mail_for(settings, ref) if m.magic_links()]
    assert sorted(asked) == sorted(
        ["captain@sailjada.com", "alex@sailjada.com", replaced, "casey@sailjada.com"]
    )
