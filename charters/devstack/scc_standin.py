"""Stand-in for the ShipCaptainCrew API on API Gateway. Auth as the real Lambda does it:
sha256(service key) must equal SERVICE_KEY_HASH, read from the (emulated) Lambda's configuration
on every request; a missing variable rejects everything, with a body that does not say why.
Events are written to DynamoDB `scc-events`; no dedup of its own."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
import uuid
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_ser, _de = TypeSerializer(), TypeDeserializer()
MAX_UPLOAD_BYTES = 15 * 1024 * 1024


def _item(body: dict[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(v) for k, v in body.items() if v is not None and v != ""}


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _de.deserialize(v) for k, v in item.items()}


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

    async def create(request: Request) -> JSONResponse:
        if not authorised(request):
            return rejected()
        body = await request.json()
        if not body.get("event_name") or not body.get("date"):
            return JSONResponse({"message": "event_name and date are required"}, status_code=400)
        event_id = f"evt-{uuid.uuid4().hex[:16]}"
        record = {
            **body,
            "event_id": event_id,
            "status": "scheduled",
            "created_at": int(time.time()),
        }
        dynamodb.put_item(TableName=table, Item=_item(record))
        return JSONResponse({"event_id": event_id}, status_code=201)

    async def find(request: Request) -> JSONResponse:
        if not authorised(request):
            return rejected()
        ref = request.query_params.get("external_ref", "")
        pages = dynamodb.get_paginator("scan").paginate(
            TableName=table,
            FilterExpression="external_ref = :r",
            ExpressionAttributeValues={":r": {"S": ref}},
            ConsistentRead=True,
        )
        events = [_plain(i) for page in pages for i in page.get("Items", [])]
        return JSONResponse(
            {"events": [{"event_id": e["event_id"], "status": e.get("status")} for e in events]}
        )

    async def update(request: Request) -> JSONResponse:
        if not authorised(request):
            return rejected()
        event_id = request.path_params["event_id"]
        body = await request.json()
        names = {f"#f{i}": k for i, k in enumerate(body)}
        values = {f":v{i}": _ser.serialize(v) for i, v in enumerate(body.values())}
        if not body:
            return JSONResponse({"message": "empty update"}, status_code=400)
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
            return JSONResponse({"message": "no such event"}, status_code=404)
        return JSONResponse({"event_id": event_id})

    async def presign(request: Request) -> JSONResponse:
        """Presigned POST for a guest photo under photos/{event_id}/ (public route)."""
        event_id = request.path_params["event_id"]
        found = dynamodb.get_item(TableName=table, Key={"event_id": {"S": event_id}}).get("Item")
        if not found:
            return JSONResponse({"message": "no such event"}, status_code=404)
        name = re.sub(r"[^A-Za-z0-9._-]", "_", request.query_params.get("filename", "photo"))[-80:]
        content_type = request.query_params.get("content_type") or "application/octet-stream"
        if not content_type.startswith("image/"):
            return JSONResponse({"message": "only images can be uploaded"}, status_code=400)
        post = s3.generate_presigned_post(
            Bucket=bucket,
            Key=f"photos/{event_id}/{uuid.uuid4().hex[:8]}-{name}",
            Fields={"Content-Type": content_type},
            Conditions=[
                ["content-length-range", 1, MAX_UPLOAD_BYTES],
                {"Content-Type": content_type},
            ],
            ExpiresIn=3600,
        )
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
