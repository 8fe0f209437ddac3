"""What operators rely on: the story in the Web UI (search attributes, memo, details), the list,
and a history on the server that holds no guest PII or revenue but decodes for them."""

from __future__ import annotations

import asyncio
import base64

import httpx
from temporalio.client import Client
from typer.testing import CliRunner

from charters import contract
from charters.settings import Settings
from charters.starter.cli import app
from tests.conftest import Booker
from tests.support import booking_data

runner = CliRunner()


async def test_web_ui_story_and_list(booker: Booker, client: Client) -> None:
    data = booking_data()
    result = await booker.book_and_confirm(data)
    desc = await client.get_workflow_handle(result.workflow_id).describe()
    attrs = {k.name: v for k, v in desc.typed_search_attributes}
    assert attrs["BookingRef"] == data["booking_ref"]
    assert attrs["BookingStage"] == "confirmed" and attrs["CrewPending"] == 0
    assert "BlockedOn" not in attrs and attrs["CharterDate"].year >= 2026
    assert set(attrs) - {"BuildIds", "TemporalChangeVersion"} <= {
        k.name for k in contract.SEARCH_ATTRIBUTES
    }
    assert await desc.memo_value("guest_page_url") == result.guest_page_url
    for value in attrs.values():
        assert "Boatsetter Guest" not in str(value) and "840.75" not in str(value)

    async def listed() -> str:
        for _ in range(50):
            shown = await asyncio.to_thread(
                runner.invoke, app, ["list", "--stage", "confirmed"], env={"COLUMNS": "250"}
            )
            if result.workflow_id in shown.output:
                return shown.output
            await asyncio.sleep(0.3)
        return shown.output

    assert result.workflow_id in await listed()
    watched = await asyncio.to_thread(runner.invoke, app, ["status", result.workflow_id, "--watch"])
    assert watched.exit_code == 0 and "confirmed" in watched.output


async def test_history_on_the_server_is_encrypted_and_decodes_through_the_codec_server(
    booker: Booker,
    settings: Settings,
) -> None:
    guest = "Zelda Privateguest"
    data = booking_data(guest={"name": guest, "email": "zelda@example.org", "party_size": 2})
    result = await booker.book_and_confirm(data)
    raw_client = await Client.connect(settings.temporal_address)
    history = await raw_client.get_workflow_handle(result.workflow_id).fetch_history()
    raw = history.to_json().encode() + b"".join(e.SerializeToString() for e in history.events)
    for secret in (guest.encode(), b"zelda@example.org", b"840.75", b"289.41"):
        assert secret not in raw, secret

    started = history.events[0].workflow_execution_started_event_attributes
    payloads = {
        "payloads": [
            {
                "metadata": {k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
                "data": base64.b64encode(p.data).decode(),
            }
            for p in started.input.payloads
        ]
    }
    assert settings.codec_auth_token is not None
    url = f"http://127.0.0.1:{settings.codec_port}/decode"
    token = settings.codec_auth_token.get_secret_value()
    refused = httpx.post(url, json=payloads, timeout=10)
    assert refused.status_code == 401
    decoded = httpx.post(
        url, json=payloads, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert decoded.status_code == 200
    text = b"".join(base64.b64decode(p["data"]) for p in decoded.json()["payloads"])
    assert guest.encode() in text and b"840.75" in text
