"""What an injected fault answers, shaped as the service would answer it: AWS errors every
botocore parser reads by their code, JSON errors for the HTTP stand-ins."""

from __future__ import annotations

import json
import uuid
from typing import Any

import h11

from charters_dev.faultproxy.transport import Answer


def injected(kind: str, request: h11.Request, *, aws: bool, recipient: str | None) -> Answer:
    """The answer for fault `kind` (any but `reset`, which drops the connection instead);
    `recipient` is the address SES is made to refuse."""
    marker = (b"x-fault-injected", kind.encode())
    if kind == "throttle":
        if aws:
            return aws_error(400, "ThrottlingException", "Rate exceeded", request, marker)
        return json_answer(
            429, {"message": "fault proxy: rate exceeded"}, [(b"retry-after", b"1"), marker]
        )
    if kind == "rejected":  # SES refusing one recipient, as a sandbox account does
        return aws_error(400, "MessageRejected", "Email address is not verified.", request, marker)
    if kind == "sandbox":  # the same, when the sender's IAM policy names its identities
        recipient = recipient or "someone@example.com"
        return aws_error(
            403,
            "AccessDenied",
            "User `arn:aws:sts::123456789012:assumed-role/charters-worker/w1' is not "
            "authorized to perform `ses:SendEmail' on resource "
            f"`arn:aws:ses:us-west-2:123456789012:identity/{recipient}'",
            request,
            marker,
        )
    status = int(kind)
    if aws and status == 400:
        return aws_error(400, "ValidationException", "fault proxy: injected 400", request, marker)
    if aws:
        code = "InternalError" if status == 500 else "ServiceUnavailable"
        return aws_error(status, code, f"fault proxy: injected {status}", request, marker)
    return json_answer(status, {"message": f"fault proxy: injected {status}"}, [marker])


def json_answer(status: int, data: Any, headers: list[tuple[bytes, bytes]] | None = None) -> Answer:
    return Answer(
        status,
        [(b"content-type", b"application/json"), *(headers or [])],
        json.dumps(data).encode(),
    )


def aws_error(
    status: int, code: str, message: str, request: h11.Request, marker: tuple[bytes, bytes]
) -> Answer:
    """An AWS error every botocore protocol parser reads as `code`: JSON for the JSON protocols
    (X-Amz-Target / x-amz-json content type), XML otherwise; the x-amzn-ErrorType header covers
    rest-json services whose body is ignored."""
    request_id = str(uuid.uuid4())
    headers = dict(request.headers)  # h11 gives lower-case names
    content_type = headers.get(b"content-type", b"")
    common = [
        (b"x-amzn-errortype", code.encode()),
        (b"x-amzn-requestid", request_id.encode()),
        (b"x-amz-request-id", request_id.encode()),
        marker,
    ]
    if b"x-amz-target" in headers or b"json" in content_type:
        return Answer(
            status,
            [(b"content-type", b"application/x-amz-json-1.0"), *common],
            json.dumps({"__type": code, "message": message}).encode(),
        )
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse><Error><Type>'
        f"{'Sender' if status < 500 else 'Receiver'}</Type><Code>{code}</Code>"
        f"<Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
    )
    return Answer(status, [(b"content-type", b"application/xml"), *common], body.encode())
