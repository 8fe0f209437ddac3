"""The latency/fault proxy: pass-through fidelity, each fault kind, run-time control, and boto3
against moto through it. Everything runs on free ports; nothing here needs the full stack."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
import uvicorn
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError
from charters_dev.faultproxy import (
    FaultProxy,
    FaultSpec,
    ProxyTarget,
    UpstreamError,
    UpstreamPool,
)
from charters_dev.ports import wait_for
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

# ---- a tiny counting upstream ---------------------------------------------------------------


class Upstream:
    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()
        self.url = ""

    async def echo(self, request: Request) -> Response:
        with self.lock:
            self.count += 1
        body = await request.body()
        status = int(request.headers.get("x-want-status", "200"))
        return JSONResponse(
            {
                "method": request.method,
                "path": request.url.path,
                "raw_path": request.scope["raw_path"].decode("latin-1"),
                "query": request.scope["query_string"].decode("latin-1"),
                "headers": [
                    [k.decode("latin-1"), v.decode("latin-1")] for k, v in request.scope["headers"]
                ],
                "body": body.decode("latin-1"),
            },
            status_code=status,
            headers={"x-upstream": "yes"},
        )

    async def gzipped(self, request: Request) -> Response:
        with self.lock:
            self.count += 1
        return Response(
            gzip.compress(b"hello " * 100),
            media_type="text/plain",
            headers={"content-encoding": "gzip"},
        )


def bound_socket() -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def free_port() -> int:
    with bound_socket() as s:
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    up = Upstream()
    app = Starlette(
        routes=[
            Route("/gzip", up.gzipped),
            Route(
                "/{path:path}", up.echo, methods=["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"]
            ),
        ]
    )
    sock = bound_socket()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_for(lambda: server.started, "upstream")
    up.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    yield up
    server.should_exit = True
    thread.join(10)
    sock.close()


# ---- the proxy, in a thread with its own event loop -----------------------------------------


class ProxyThread:
    def __init__(self, upstream_url: str, spec: str = "", aws: bool = False) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.proxy = FaultProxy(0, upstream_url, spec, aws, name="test")
        port = asyncio.run_coroutine_threadsafe(self.proxy.start(), self.loop).result(10)
        self.url = f"http://127.0.0.1:{port}"

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.proxy.aclose(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def make_proxy() -> Iterator[Any]:
    started: list[ProxyThread] = []

    def make(upstream_url: str, spec: str = "", aws: bool = False) -> ProxyThread:
        p = ProxyThread(upstream_url, spec, aws)
        started.append(p)
        return p

    yield make
    for p in started:
        p.close()


def http() -> httpx.Client:
    return httpx.Client(trust_env=False, timeout=10)


# ---- spec parsing ---------------------------------------------------------------------------


def test_parse_compact_form_round_trips() -> None:
    spec = FaultSpec.parse("delay=50,jitter=5,error=0.1,kinds=503|throttle|reset,after=1")
    assert spec == FaultSpec(
        delay_ms=50,
        jitter_ms=5,
        error_rate=0.1,
        kinds=["503", "throttle", "reset"],
        after_upstream=True,
    )
    assert FaultSpec.parse(spec.to_text()) == spec
    assert FaultSpec.parse("delay=1.5s,error=10%,slow=250ms,seed=7") == FaultSpec(
        delay_ms=1500, error_rate=0.1, slow_ms=250, seed=7
    )
    assert FaultSpec.parse("") == FaultSpec.parse("off") == FaultSpec()
    assert not FaultSpec().active


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("delay=50,bogus=1", "'bogus'"),
        ("error=1.5", "'error'"),
        ("error=lots", "'error'"),
        ("kinds=503|explode", "'kinds'"),
        ("delay=-3", "'delay'"),
        ("after=maybe", "'after'"),
        ("seed=x", "'seed'"),
        ("jitter", "'jitter'"),
        ("delay=1,delay_ms=2", "'delay_ms'"),
    ],
)
def test_parse_errors_name_the_bad_key(text: str, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        FaultSpec.parse(text)


def test_target_takes_compact_spec() -> None:
    t = ProxyTarget.model_validate(
        {
            "name": "moto",
            "listen_port": 0,
            "upstream": "http://127.0.0.1:1",
            "aws": True,
            "spec": "error=1,kinds=throttle",
        }
    )
    assert t.spec.kinds == ["throttle"] and t.spec.error_rate == 1


# ---- pass-through ---------------------------------------------------------------------------


def test_pass_through_preserves_request_and_answer(upstream: Upstream, make_proxy: Any) -> None:
    proxy = make_proxy(upstream.url)
    before = upstream.count
    body = b"\x00binary\xffbody" * 100
    with http() as c:
        r = c.post(
            f"{proxy.url}/some/path%2Fenc?a=1&b=two%20words&b=3",
            content=body,
            headers={
                "Authorization": "Bearer t0k3n",
                "X-Custom": "v1",
                "x-want-status": "201",
                "Content-Type": "application/octet-stream",
            },
        )
    assert r.status_code == 201
    assert r.headers["x-upstream"] == "yes"
    seen = r.json()
    assert seen["method"] == "POST"
    assert seen["raw_path"] == "/some/path%2Fenc"
    assert seen["query"] == "a=1&b=two%20words&b=3"
    assert seen["body"] == body.decode("latin-1")
    headers = dict(seen["headers"])
    assert headers["authorization"] == "Bearer t0k3n"
    assert headers["x-custom"] == "v1"
    assert headers["content-type"] == "application/octet-stream"
    assert headers["content-length"] == str(len(body))
    assert headers["host"] == upstream.url.removeprefix("http://")  # fixed to the upstream
    assert upstream.count == before + 1

    with http() as c:
        for method in ("GET", "PUT", "DELETE", "PATCH"):
            r = c.request(method, f"{proxy.url}/m", content=b"x" if method != "GET" else None)
            assert r.status_code == 200 and r.json()["method"] == method
        head = c.head(f"{proxy.url}/m")
        assert head.status_code == 200 and head.content == b""
        assert int(head.headers["content-length"]) > 0
        z = c.get(f"{proxy.url}/gzip")
        assert z.headers["content-encoding"] == "gzip" and z.text == "hello " * 100


def test_aws_target_preserves_host(upstream: Upstream, make_proxy: Any) -> None:
    proxy = make_proxy(upstream.url, aws=True)
    with http() as c:
        seen = c.get(f"{proxy.url}/x", headers={"Host": "s3.example.test:1234"}).json()
    assert dict(seen["headers"])["host"] == "s3.example.test:1234"


def test_upstream_path_prefix_and_unreachable_upstream(upstream: Upstream, make_proxy: Any) -> None:
    with http() as c:
        prefixed = make_proxy(upstream.url + "/prod")
        assert c.get(f"{prefixed.url}/events?x=1").json()["raw_path"] == "/prod/events"
        dead = make_proxy(f"http://127.0.0.1:{free_port()}")
        assert c.get(f"{dead.url}/x").status_code == 502
        assert c.get(f"{dead.url}/__faults").json()["counters"]["upstream_errors"] == 1


def test_absolute_form_target(upstream: Upstream, make_proxy: Any) -> None:
    proxy = make_proxy(upstream.url)
    port = int(proxy.url.rpartition(":")[2])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"GET http://elsewhere.test/abs/path?x=1 HTTP/1.1\r\n"
            b"Host: elsewhere.test\r\nConnection: close\r\n\r\n"
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    seen = json.loads(body)
    assert seen["raw_path"] == "/abs/path" and seen["query"] == "x=1"


async def test_pool_retries_only_a_stale_keep_alive_connection() -> None:
    """A reused connection the upstream closed while idle is retried once on a fresh one; a
    fresh connection that fails is not retried (the upstream may have acted on it)."""
    accepted = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        first = accepted == 1
        await reader.readuntil(b"\r\n\r\n")
        if not first:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        pool = UpstreamPool(f"http://127.0.0.1:{port}")
        stale = await asyncio.open_connection("127.0.0.1", port)  # will close on first use
        pool._idle.append((*stale, time.monotonic()))
        answer = await pool.request(b"GET", b"/", [(b"Host", b"x")], b"")
        assert (answer.status, answer.body, pool.opened) == (200, b"ok", 1)

        accepted = 0
        fresh = UpstreamPool(f"http://127.0.0.1:{port}")
        with pytest.raises(UpstreamError):
            await fresh.request(b"POST", b"/", [(b"Host", b"x"), (b"Content-Length", b"1")], b"x")
        assert accepted == 1
    finally:
        server.close()
        await server.wait_closed()


def test_delay_is_applied(upstream: Upstream, make_proxy: Any) -> None:
    proxy = make_proxy(upstream.url, "delay=200,jitter=20")
    with http() as c:
        c.get(f"{proxy.url}/warm")
        t0 = time.monotonic()
        assert c.get(f"{proxy.url}/x").status_code == 200
        assert time.monotonic() - t0 >= 0.17


# ---- faults ---------------------------------------------------------------------------------


def test_503_never_reaches_upstream(upstream: Upstream, make_proxy: Any) -> None:
    proxy = make_proxy(upstream.url, "error=1,kinds=503")
    before = upstream.count
    with http() as c:
        for _ in range(5):
            r = c.post(f"{proxy.url}/effect", content=b"charge")
            assert r.status_code == 503
            assert r.headers["x-fault-injected"] == "503"
        counters = c.get(f"{proxy.url}/__faults").json()["counters"]
    assert upstream.count == before
    assert counters["requests"] == 5 and counters["forwarded"] == 0
    assert counters["faults"]["503"] == 5


def test_500_for_aws_target_is_an_aws_error(upstream: Upstream, make_proxy: Any) -> None:
    proxy = make_proxy(upstream.url, "error=1,kinds=500", aws=True)
    with http() as c:
        r = c.get(f"{proxy.url}/bucket/key")
    assert r.status_code == 500
    assert "<Code>InternalError</Code>" in r.text


def test_throttle_aws_and_non_aws(upstream: Upstream, make_proxy: Any) -> None:
    aws = make_proxy(upstream.url, "error=1,kinds=throttle", aws=True)
    plain = make_proxy(upstream.url, "error=1,kinds=throttle")
    before = upstream.count
    with http() as c:
        r = c.post(
            aws.url,
            headers={
                "X-Amz-Target": "DynamoDB_20120810.PutItem",
                "Content-Type": "application/x-amz-json-1.0",
            },
            content=b"{}",
        )
        assert r.status_code == 400
        assert r.headers["x-amzn-errortype"] == "ThrottlingException"
        assert r.json() == {"__type": "ThrottlingException", "message": "Rate exceeded"}
        r = c.put(f"{aws.url}/bucket/key", content=b"data")  # rest-xml: an XML body
        assert r.status_code == 400 and "<Code>ThrottlingException</Code>" in r.text
        r = c.get(f"{plain.url}/events")
        assert r.status_code == 429 and r.headers["retry-after"] == "1"
    assert upstream.count == before


def test_reset_is_a_connection_error(upstream: Upstream, make_proxy: Any) -> None:
    proxy = make_proxy(upstream.url, "error=1,kinds=reset")
    before = upstream.count
    with http() as c, pytest.raises(httpx.TransportError):
        c.post(f"{proxy.url}/effect", content=b"x")
    assert upstream.count == before
    with http() as c:
        assert c.get(f"{proxy.url}/__faults").json()["counters"]["faults"]["reset"] == 1


def test_after_upstream_effect_happens_but_client_fails(
    upstream: Upstream, make_proxy: Any
) -> None:
    proxy = make_proxy(upstream.url, "error=1,kinds=503,after=1")
    before = upstream.count
    with http() as c:
        assert c.post(f"{proxy.url}/effect", content=b"x").status_code == 503
    assert upstream.count == before + 1

    c2 = make_proxy(upstream.url, "error=1,kinds=reset,after=1")
    with http() as c, pytest.raises(httpx.TransportError):
        c.post(f"{c2.url}/effect", content=b"x")
    assert upstream.count == before + 2


def test_slow_forwards_then_holds_the_answer(upstream: Upstream, make_proxy: Any) -> None:
    proxy = make_proxy(upstream.url, "error=1,kinds=slow,slow=300")
    before = upstream.count
    with http() as c:
        t0 = time.monotonic()
        assert c.get(f"{proxy.url}/x").status_code == 200
        assert time.monotonic() - t0 >= 0.28
    assert upstream.count == before + 1


def test_error_rate_is_roughly_honoured_and_seeded(upstream: Upstream, make_proxy: Any) -> None:
    def run() -> list[int]:
        proxy = make_proxy(upstream.url, "error=0.3,kinds=500|503,seed=42")
        with http() as c:
            return [c.get(f"{proxy.url}/x").status_code for _ in range(100)]

    first, second = run(), run()
    assert first == second  # the seed makes the sequence repeatable
    failed = sum(s != 200 for s in first)
    assert 10 <= failed <= 55 and {500, 503} <= set(first)


# ---- admin ----------------------------------------------------------------------------------


def test_admin_get_put_delete(upstream: Upstream, make_proxy: Any) -> None:
    proxy = make_proxy(upstream.url)
    admin = f"{proxy.url}/__faults"
    with http() as c:
        assert c.get(f"{proxy.url}/x").status_code == 200
        r = c.put(admin, json={"error_rate": 1, "kinds": ["503"]})
        assert r.status_code == 200 and r.json()["spec"]["error_rate"] == 1
        assert c.get(f"{proxy.url}/x").status_code == 503
        r = c.put(admin, json="error=1,kinds=throttle")  # the compact form as a JSON string
        assert r.json()["spec"]["kinds"] == ["throttle"]
        assert c.get(f"{proxy.url}/x").status_code == 429

        status = c.get(admin).json()
        assert status["name"] == "test" and status["upstream"] == upstream.url
        assert status["spec_text"] == "error=1,kinds=throttle"
        assert status["counters"] == {
            "requests": 3,
            "forwarded": 1,
            "upstream_errors": 0,
            "faults_total": 2,
            "faults": {
                "400": 0,
                "500": 0,
                "503": 1,
                "throttle": 1,
                "reset": 0,
                "slow": 0,
                "rejected": 0,
                "sandbox": 0,
            },
        }

        bad = c.put(admin, json={"error_rate": 1, "kindz": ["503"]})
        assert bad.status_code == 400 and "kindz" in bad.text
        bad = c.put(admin, json="error=1,kindz=503")
        assert bad.status_code == 400 and "kindz" in bad.text
        assert c.get(f"{proxy.url}/x").status_code == 429  # a bad PUT changes nothing

        assert c.put(admin, json="off").json()["spec_text"] == "off"
        assert c.get(f"{proxy.url}/x").status_code == 200

        drained = c.delete(admin).json()["counters"]
        assert drained["requests"] == 5
        assert c.get(admin).json()["counters"]["requests"] == 0
        assert c.post(admin).status_code == 405


# ---- boto3 against moto, through the proxy --------------------------------------------------


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            lambda: httpx.get(f"{url}/moto-api/", trust_env=False).status_code == 200, "moto server"
        )
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def aws_client(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-west-2",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(
            retries={"max_attempts": 1, "mode": "standard"},
            s3={"addressing_style": "path"},
            connect_timeout=5,
            read_timeout=10,
        ),
    )


def test_boto3_s3_through_proxy(moto_url: str, make_proxy: Any) -> None:
    proxy = make_proxy(moto_url, aws=True)
    s3 = aws_client("s3", proxy.url)
    direct = aws_client("s3", moto_url)
    s3.create_bucket(
        Bucket="proxied", CreateBucketConfiguration={"LocationConstraint": "us-west-2"}
    )
    s3.put_object(
        Bucket="proxied",
        Key="dir/a b+c.html",
        Body=b"<p>hi</p>",
        ContentType="text/html",
        Metadata={"k": "v"},
    )
    got = direct.get_object(Bucket="proxied", Key="dir/a b+c.html")
    assert got["Body"].read() == b"<p>hi</p>" and got["Metadata"] == {"k": "v"}
    big = bytes(range(256)) * (20 * 1024)  # 5 MiB, from a file object: Expect: 100-continue
    s3.put_object(Bucket="proxied", Key="big.bin", Body=io.BytesIO(big))
    assert s3.get_object(Bucket="proxied", Key="big.bin")["Body"].read() == big
    s3.delete_object(Bucket="proxied", Key="big.bin")
    head = s3.head_object(Bucket="proxied", Key="dir/a b+c.html")
    assert head["ContentLength"] == len(b"<p>hi</p>")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="proxied")["Contents"]] == [
        "dir/a b+c.html"
    ]
    with pytest.raises(ClientError) as missing:
        s3.get_object(Bucket="proxied", Key="nope")
    assert missing.value.response["Error"]["Code"] == "NoSuchKey"

    with http() as c:
        c.put(f"{proxy.url}/__faults", json="error=1,kinds=throttle")
    with pytest.raises(ClientError) as throttled:
        s3.put_object(Bucket="proxied", Key="throttled", Body=b"x")
    assert throttled.value.response["Error"]["Code"] == "ThrottlingException"
    assert throttled.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "Contents" not in direct.list_objects_v2(Bucket="proxied", Prefix="throttled")

    with http() as c:
        c.put(f"{proxy.url}/__faults", json="error=1,kinds=reset,after=1")
    with pytest.raises(HTTPClientError):  # botocore's ConnectionClosedError and kin
        s3.put_object(Bucket="proxied", Key="landed", Body=b"x")
    assert direct.get_object(Bucket="proxied", Key="landed")["Body"].read() == b"x"


def test_boto3_json_protocol_throttle(moto_url: str, make_proxy: Any) -> None:
    proxy = make_proxy(moto_url, "error=1,kinds=throttle", aws=True)
    ddb = aws_client("dynamodb", proxy.url)
    with pytest.raises(ClientError) as throttled:
        ddb.list_tables()
    assert throttled.value.response["Error"]["Code"] == "ThrottlingException"
    assert throttled.value.response["Error"]["Message"] == "Rate exceeded"
    secrets = aws_client("secretsmanager", proxy.url)
    with pytest.raises(ClientError) as throttled:
        secrets.list_secrets()
    assert throttled.value.response["Error"]["Code"] == "ThrottlingException"
    sesv2 = aws_client("sesv2", proxy.url)  # rest-json: the code comes from the header
    with pytest.raises(ClientError) as throttled:
        sesv2.list_email_identities()
    assert throttled.value.response["Error"]["Code"] == "ThrottlingException"
    cloudfront = aws_client("cloudfront", proxy.url)  # rest-xml, <ErrorResponse>
    with pytest.raises(ClientError) as throttled:
        cloudfront.list_distributions()
    assert throttled.value.response["Error"]["Code"] == "ThrottlingException"


# ---- the command line, and throughput -------------------------------------------------------


def test_cli_runs_several_targets(upstream: Upstream) -> None:
    targets = [
        {"name": "plain", "listen_port": 0, "upstream": upstream.url},
        {"name": "broken", "listen_port": 0, "upstream": upstream.url, "spec": "error=1"},
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "charters_dev.faultproxy", "--targets", json.dumps(targets)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ports = {}
        for _ in targets:
            words = proc.stdout.readline().split()
            ports[words[1]] = int(words[4].rpartition(":")[2])
        with http() as c:
            assert c.get(f"http://127.0.0.1:{ports['plain']}/x").status_code == 200
            assert c.get(f"http://127.0.0.1:{ports['broken']}/x").status_code == 503
            status = c.get(f"http://127.0.0.1:{ports['broken']}/__faults").json()
            assert status["name"] == "broken" and status["counters"]["faults"]["503"] == 1
    finally:
        proc.terminate()
        proc.wait(10)


def test_cli_rejects_a_bad_spec() -> None:
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "charters_dev.faultproxy",
            "--listen",
            "0",
            "--upstream",
            "http://127.0.0.1:1",
            "--spec",
            "delay=5,nope=1",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 2 and "'nope'" in r.stderr


async def _keep_alive_client(port: int, jobs: Iterator[int]) -> int:
    """A minimal HTTP/1.1 load client (httpx's own pool would be the bottleneck here)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    ok = 0
    try:
        for i in jobs:
            writer.write(
                b"POST /load/%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                b"Content-Length: 512\r\n\r\n%s" % (i, port, b"x" * 512)
            )
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
            ok += head.startswith(b"HTTP/1.1 200 ")
    finally:
        writer.close()
    return ok


async def test_throughput_with_delay(upstream: Upstream, make_proxy: Any) -> None:
    """50 ms of added latency must not cap throughput: the waits overlap. Loose bound: the load
    client, the proxy and the upstream share one process (and its GIL) here; run standalone
    the proxy does ~900-1300 req/s with delay=50 on two cores."""
    proxy = make_proxy(upstream.url, "delay=50,jitter=5")
    port = int(proxy.url.rpartition(":")[2])
    total, concurrency = 1500, 60
    jobs = iter(range(total))
    t0 = time.monotonic()
    ok = sum(await asyncio.gather(*(_keep_alive_client(port, jobs) for _ in range(concurrency))))
    rate = total / (time.monotonic() - t0)
    print(f"fault proxy throughput: {rate:.0f} req/s with 50 ms delay")
    assert ok == total
    assert rate > 150
    assert proxy.proxy.pool.opened <= concurrency  # upstream connections are kept alive
