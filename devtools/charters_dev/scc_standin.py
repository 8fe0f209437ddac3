"""Stand-in for the ShipCaptainCrew API on API Gateway. Auth as the real Lambda does it:
sha256(service key) must equal SERVICE_KEY_HASH, read from the (emulated) Lambda's configuration
on every request; a missing variable rejects everything, with a body that does not say why.
Events are written to DynamoDB `scc-events`. Creates hold SCC to the contract the README states:
a POST without an `Idempotency-Key` header is refused (400); the key names the event (its id is
derived from the key, written with a conditional put), so a repeat answers 200 with the event the
key made first and creates nothing, however many arrive at once and across restarts (the table
persists). Nothing else is deduplicated, so a duplicate by the product would show.

Every DynamoDB, Lambda and S3 call runs in Starlette's thread pool, never on the event loop. The
look-up by `external_ref` goes through `ExternalRefIndex` instead of scanning the whole table
(a scan grew with every booking, on the product's critical path)."""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
import time
import uuid
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_ser, _de = TypeSerializer(), TypeDeserializer()
MAX_UPLOAD_BYTES = 15 * 1024 * 1024
IDEMPOTENCY_HEADER = "Idempotency-Key"
MISSING_KEY = (
    f"missing {IDEMPOTENCY_HEADER} header: every create must carry one (a repeat with the same "
    "key returns the event it created first and creates nothing)"
)


def event_id_for(key: str) -> str:
    """The event a key makes: one id per key, so the table's conditional put is the dedup."""
    return f"evt-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def _item(body: dict[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(v) for k, v in body.items() if v is not None and v != ""}


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _de.deserialize(v) for k, v in item.items()}


class ExternalRefIndex:
    """external_ref -> event ids, in creation order, for the `GET /prod/events?external_ref=`
    look-up. Built by one scan of the table on first use, then kept by `create` (this stand-in
    is the only writer of new events). Ids are indexed before their item is written and every
    hit is read back (consistent GetItem), so the answer is what a consistent scan would give:
    an event is found once it is in the table, and an id whose item is gone (moto restarted) is
    skipped."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        self._ddb = dynamodb
        self._table = table
        self._lock = threading.Lock()
        self._ids: dict[str, list[str]] | None = None

    def _loaded(self) -> dict[str, list[str]]:
        if self._ids is None:
            ids: dict[str, list[str]] = {}
            pages = self._ddb.get_paginator("scan").paginate(
                TableName=self._table,
                ProjectionExpression="event_id, external_ref",
                ConsistentRead=True,
            )
            for page in pages:
                for item in page.get("Items", []):
                    ref = item.get("external_ref", {}).get("S")
                    if ref:
                        ids.setdefault(ref, []).append(item["event_id"]["S"])
            self._ids = ids
        return self._ids

    def add(self, ref: str, event_id: str) -> None:
        with self._lock:
            known = self._loaded().setdefault(ref, [])
            if event_id not in known:
                known.append(event_id)

    def discard(self, ref: str, event_id: str) -> None:
        with self._lock:
            known = self._loaded().get(ref, [])
            if event_id in known:
                known.remove(event_id)

    def find(self, ref: str) -> list[dict[str, Any]]:
        with self._lock:
            candidates = list(self._loaded().get(ref, []))
        events = []
        for event_id in candidates:
            item = self._ddb.get_item(
                TableName=self._table, Key={"event_id": {"S": event_id}}, ConsistentRead=True
            ).get("Item")
            if item is None:
                continue  # not written yet, or gone with a moto restart
            if item.get("external_ref", {}).get("S") == ref:
                events.append(_plain(item))
        return events


def scc_app(
    *,
    lambda_client: Any,
    dynamodb: Any,
    s3: Any,
    secrets: Any,
    function_name: str,
    table: str,
    bucket: str,
    key_header: str,
) -> Starlette:
    def authorised(request: Request) -> bool:
        env = lambda_client.get_function_configuration(FunctionName=function_name)
        stored = env.get("Environment", {}).get("Variables", {}).get("SERVICE_KEY_HASH")
        given = request.headers.get(key_header)
        if not stored or not given:
            return False
        return hmac.compare_digest(hashlib.sha256(given.encode()).hexdigest(), stored.lower())

    def rejected() -> JSONResponse:
        return JSONResponse({"message": "Unauthorized"}, status_code=401)

    index = ExternalRefIndex(dynamodb, table)

    def store(record: dict[str, Any]) -> str | None:
        """Writes a new event; the id of the event already there when its key made one."""
        ref = record.get("external_ref")
        if ref:
            index.add(ref, record["event_id"])
        try:
            dynamodb.put_item(
                TableName=table,
                Item=_item(record),
                ConditionExpression="attribute_not_exists(event_id)",
            )
        except dynamodb.exceptions.ConditionalCheckFailedException:
            return str(record["event_id"])
        except BaseException:
            if ref:
                index.discard(ref, record["event_id"])
            raise
        return None

    async def create(request: Request) -> JSONResponse:
        if not await run_in_threadpool(authorised, request):
            return rejected()
        key = request.headers.get(IDEMPOTENCY_HEADER, "").strip()
        if not key:
            return JSONResponse({"message": MISSING_KEY}, status_code=400)
        body = await request.json()
        if not body.get("event_name") or not body.get("date"):
            return JSONResponse({"message": "event_name and date are required"}, status_code=400)
        event_id = event_id_for(key)
        record = {
            **body,
            "event_id": event_id,
            "status": "scheduled",
            "created_at": int(time.time()),
        }
        existing = await run_in_threadpool(store, record)
        if existing is not None:
            return JSONResponse({"event_id": existing}, status_code=200)
        return JSONResponse({"event_id": event_id}, status_code=201)

    async def find(request: Request) -> JSONResponse:
        if not await run_in_threadpool(authorised, request):
            return rejected()
        ref = request.query_params.get("external_ref", "")
        events = await run_in_threadpool(index.find, ref)
        return JSONResponse(
            {"events": [{"event_id": e["event_id"], "status": e.get("status")} for e in events]}
        )

    def write(event_id: str, body: dict[str, Any]) -> bool:
        names = {f"#f{i}": k for i, k in enumerate(body)}
        values = {f":v{i}": _ser.serialize(v) for i, v in enumerate(body.values())}
        try:
            dynamodb.update_item(
                TableName=table,
                Key={"event_id": {"S": event_id}},
                UpdateExpression="SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(body))),
                ConditionExpression="attribute_exists(event_id)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except dynamodb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    async def update(request: Request) -> JSONResponse:
        if not await run_in_threadpool(authorised, request):
            return rejected()
        event_id = request.path_params["event_id"]
        body = await request.json()
        if not body:
            return JSONResponse({"message": "empty update"}, status_code=400)
        if not await run_in_threadpool(write, event_id, body):
            return JSONResponse({"message": "no such event"}, status_code=404)
        return JSONResponse({"event_id": event_id})

    def presigned_post(event_id: str, name: str, content_type: str) -> dict[str, Any] | None:
        found = dynamodb.get_item(TableName=table, Key={"event_id": {"S": event_id}}).get("Item")
        if not found:
            return None
        return dict(
            s3.generate_presigned_post(
                Bucket=bucket,
                Key=f"photos/{event_id}/{uuid.uuid4().hex[:8]}-{name}",
                Fields={"Content-Type": content_type},
                Conditions=[
                    ["content-length-range", 1, MAX_UPLOAD_BYTES],
                    {"Content-Type": content_type},
                ],
                ExpiresIn=3600,
            )
        )

    async def presign(request: Request) -> JSONResponse:
        """Presigned POST for a guest photo under photos/{event_id}/ (public route)."""
        event_id = request.path_params["event_id"]
        name = re.sub(r"[^A-Za-z0-9._-]", "_", request.query_params.get("filename", "photo"))[-80:]
        content_type = request.query_params.get("content_type") or "application/octet-stream"
        if not content_type.startswith("image/"):
            return JSONResponse({"message": "only images can be uploaded"}, status_code=400)
        post = await run_in_threadpool(presigned_post, event_id, name, content_type)
        if post is None:
            return JSONResponse({"message": "no such event"}, status_code=404)
        return JSONResponse(post, headers={"Access-Control-Allow-Origin": "*"})

    routes = [
        Route("/prod/events", create, methods=["POST"]),
        Route("/prod/events", find, methods=["GET"]),
        Route("/prod/events/{event_id}", update, methods=["PATCH"]),
        Route("/prod/g/{event_id}/presign", presign, methods=["GET"]),
        Route("/g/{event_id}/presign", presign, methods=["GET"]),
    ]
    return Starlette(routes=routes)


class BehindCloudFront:
    """Plays SCC reached through CloudFront with the default policy: viewer headers the policy
    does not list (the service key among them) never reach the origin; responses carry
    CloudFront's own headers."""

    def __init__(self, app: ASGIApp, stripped_header: str) -> None:
        self.app = app
        self.stripped = stripped_header.lower().encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = [(k, v) for k, v in scope["headers"] if k.lower() != self.stripped]
        scope = {**scope, "headers": headers}

        async def send_with_cf(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {
                    **message,
                    "headers": [
                        *message.get("headers", []),
                        (b"via", b"1.1 3f2a9c.cloudfront.net (CloudFront)"),
                        (b"x-amz-cf-id", uuid.uuid4().hex.encode()),
                        (b"x-cache", b"Miss from cloudfront"),
                    ],
                }
            await send(message)

        await self.app(scope, receive, send_with_cf)
