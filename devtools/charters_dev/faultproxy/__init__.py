"""A latency and fault proxy for the local stack.

moto and the stand-ins never fail on their own, so the stack puts one of these reverse HTTP
proxies in front of each external endpoint (moto, the calendar stand-in, the SCC stand-in) and
lets tests and the chaos run add latency and failures, and switch them at run time.

It is a raw HTTP/1.1 server (asyncio streams + h11) rather than an ASGI app because one of the
faults is a connection reset, which ASGI cannot express. Requests go upstream over a pool of
keep-alive HTTP/1.1 connections, also asyncio + h11 (httpx's pool costs O(connections) per
request and capped the proxy near 250 req/s; this one does ~1000 on two shared cores). Every
wait is an `asyncio.sleep`.

Faults, chosen per request with probability `error_rate` from `kinds`:

- `400`: a rejection no retry can fix (`ValidationException` for AWS targets).
- `500`, `503`: that status. For AWS targets the body is an AWS error (`InternalError`,
  `ServiceUnavailable`) that botocore parses.
- `throttle`: AWS targets answer 400 `ThrottlingException` (header `x-amzn-ErrorType` and a body
  in the request's protocol: JSON `{"__type": ...}` for the JSON protocols, otherwise an
  `<ErrorResponse>` XML document that the query, rest-xml (S3, CloudFront) parsers read; the
  rest-json parsers take the code from the header). Other targets answer 429 with
  `Retry-After: 1`.
- `reset`: the TCP connection is closed with an RST and no answer.
- `slow`: the request is forwarded and the answer held back `slow_ms`.

`500`/`503`/`throttle`/`reset` happen before forwarding (upstream never sees the request) unless
`after_upstream` is set: then the request is forwarded, its effect happens, and the answer is
replaced by the fault. Every request first waits `delay_ms` ± `jitter_ms`.

Admin endpoints on every proxy port (never forwarded): `GET /__faults` (spec and counters),
`PUT /__faults` (a JSON FaultSpec object, or a JSON string in the compact form) and
`DELETE /__faults` (answers the counters, then zeroes them).

Holds (`gate.py`): named rules that keep matching requests in flight (before forwarding, or
with the answer held after it) until released, under `/__faults/holds`; the interleaving test
holds one booking's call with them.

Run: `python -m charters_dev.faultproxy --listen 9000 --upstream http://127.0.0.1:5055
--aws --spec "delay=50,jitter=5,error=0.1,kinds=503|throttle|reset"` or `--targets '[{"name":
"moto", "listen_port": 9000, "upstream": "http://127.0.0.1:5055", "aws": true, "spec": "..."}]'`.
"""

from charters_dev.faultproxy.cli import main, parse_args, serve_proxies
from charters_dev.faultproxy.gate import HOLDS_PATH, Gate, HoldRule
from charters_dev.faultproxy.proxy import FaultProxy
from charters_dev.faultproxy.spec import ADMIN_PATH, FAULT_KINDS, FaultKind, FaultSpec, ProxyTarget
from charters_dev.faultproxy.transport import UpstreamError, UpstreamPool

__all__ = [
    "ADMIN_PATH",
    "FAULT_KINDS",
    "FaultKind",
    "FaultProxy",
    "FaultSpec",
    "Gate",
    "HOLDS_PATH",
    "HoldRule",
    "ProxyTarget",
    "UpstreamError",
    "UpstreamPool",
    "main",
    "parse_args",
    "serve_proxies",
]
