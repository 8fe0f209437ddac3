"""Stand-in for the CloudFront distribution in front of the guest bucket: the local "edge".

What the real distribution does for a guest, in the order CloudFront does it:

1. the viewer-request CloudFront Function (`charters/cloudfront/guest_rewrite.js`) maps
   `/g/{slug}` and `/g/{slug}/` to the object `guest-pages/{slug}.html`, redirects upper-case
   slugs to the lower-case URL and answers 404 for anything else under `/g/`. `rewrite()` below
   is a port of those rules to Python (Node per request would be too slow); the browser tests
   run both over the same URI table so the two cannot drift apart;
2. the origin fetch: the object from the (moto) bucket, with its own content type;
3. the response headers policy: security headers and a Content-Security-Policy. Inline
   `<script>` and `<style>` blocks are allowed by their sha256 hash, computed from the page
   served. The guest page's script and style are template text with no booking data in them,
   so the hashes are the same for every page of one template version and a static response
   headers policy in production can carry them.

The viewer's URI is read as sent (`raw_path`, still %-escaped), as CloudFront hands it to the
function. URIs the function passes through unchanged (outside `/g/`) belong to other cache
behaviours of the real distribution; this edge serves only the guest pages and answers 404.
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from botocore.exceptions import ClientError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from charters.settings import Settings

PREFIX = "/g/"
NOT_FOUND_KEY = "guest-pages/not-found.html"  # infra/charters.yaml CustomErrorResponses
SLUG_ANY_CASE = re.compile(r"[A-Za-z0-9-]{1,64}")
NONE = "'none'"


@dataclass(frozen=True)
class Rewrite:
    """What the viewer-request function decided: forward `uri` to the origin (`origin` when it
    rewrote it, `pass` when untouched), redirect to `location`, or answer 404 itself."""

    kind: Literal["origin", "pass", "redirect", "not_found"]
    uri: str | None = None
    location: str | None = None


def rewrite(uri: str, raw_query: str = "") -> Rewrite:
    """`guest_rewrite.js`'s `handler`, rule for rule. `raw_query` is the query string exactly as
    the viewer sent it (no leading '?'); it is only used to carry it over on a redirect."""
    if not uri.startswith(PREFIX):
        return Rewrite("pass", uri=uri)
    slug = uri[len(PREFIX) :]
    if slug.endswith("/"):
        slug = slug[:-1]
    if not SLUG_ANY_CASE.fullmatch(slug):
        return Rewrite("not_found")
    lower = slug.lower()
    if lower != slug:
        return Rewrite("redirect", location=PREFIX + lower + (f"?{raw_query}" if raw_query else ""))
    return Rewrite("origin", uri=f"/guest-pages/{slug}.html")


_INLINE = re.compile(r"<(script|style)\b([^>]*)>(.*?)</\1\s*>", re.IGNORECASE | re.DOTALL)


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def inline_hashes(html: str) -> tuple[list[str], list[str]]:
    """CSP hash sources of every inline <script> (without src) and <style> block, in order."""
    scripts: list[str] = []
    styles: list[str] = []
    for tag, attrs, body in _INLINE.findall(html):
        if tag.lower() == "script":
            if re.search(r"\bsrc\s*=", attrs, re.IGNORECASE):
                continue
            scripts.append(_sha256(body))
        else:
            styles.append(_sha256(body))
    return list(dict.fromkeys(scripts)), list(dict.fromkeys(styles))


def content_security_policy(html: str, connect_origins: Iterable[str]) -> str:
    scripts, styles = inline_hashes(html)
    connect = " ".join(dict.fromkeys(connect_origins)) or NONE
    return "; ".join(
        [
            "default-src 'none'",
            "img-src 'self' data:",
            f"style-src {' '.join(styles) or NONE}",
            f"script-src {' '.join(scripts) or NONE}",
            f"connect-src {connect}",
            "form-action 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ]
    )


# What the managed SecurityHeadersPolicy adds (the CSP is added per response, above).
SECURITY_HEADERS = {
    "Strict-Transport-Security": "max-age=31536000",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def connect_origins(settings: Settings) -> list[str]:
    """Where the guest page's script talks to: the SCC API (presign) and S3 (the upload)."""
    origins = [_origin(settings.scc_api_url)]
    if settings.aws_endpoint_url:
        origins.append(_origin(settings.aws_endpoint_url))
    else:
        # exactly the endpoint SCC's presigned POST names: regional virtual-hosted, which TLS
        # covers because the bucket name has no dot (docs/production.md, what SCC agrees to)
        origins.append(f"https://{settings.guest_bucket}.s3.{settings.aws_region}.amazonaws.com")
    return origins


def _edge_headers() -> dict[str, str]:
    return {
        "Via": "1.1 7c1f0e.cloudfront.net (CloudFront)",
        "X-Amz-Cf-Id": base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="),
    }


def _not_found() -> Response:
    return PlainTextResponse(
        "Not Found", status_code=404, headers={**SECURITY_HEADERS, **_edge_headers()}
    )


def edge_app(s3: Any, bucket: str, connect: list[str]) -> Starlette:
    def fetch(key: str) -> dict[str, Any] | None:
        try:
            obj = s3.get_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404", "AccessDenied"):
                return None
            raise
        with obj["Body"] as body:
            return {**obj, "Body": body.read()}

    async def serve(request: Request) -> Response:
        raw_path = request.scope.get("raw_path") or request.url.path.encode()
        uri = raw_path.decode("latin-1").split("?", 1)[0]
        query = request.scope.get("query_string", b"").decode("latin-1")
        decision = rewrite(uri, query)
        if decision.kind == "redirect":
            return Response(
                status_code=301,
                headers={
                    "Location": decision.location or "/",
                    "Cache-Control": "public, max-age=86400",
                    **_edge_headers(),
                },
            )
        if decision.kind != "origin" or decision.uri is None:
            return _not_found()
        obj = await run_in_threadpool(fetch, decision.uri.lstrip("/"))
        if obj is None:
            # the distribution's custom error response: the branded page, as a 404
            page = await run_in_threadpool(fetch, NOT_FOUND_KEY)
            if page is None:
                return _not_found()
            html = bytes(page["Body"])
            return Response(
                html,
                status_code=404,
                media_type="text/html; charset=utf-8",
                headers={
                    **SECURITY_HEADERS,
                    **_edge_headers(),
                    "Content-Security-Policy": content_security_policy(
                        html.decode("utf-8", "replace"), connect
                    ),
                },
            )
        body: bytes = obj["Body"]
        content_type = obj.get("ContentType") or "application/octet-stream"
        headers = {**SECURITY_HEADERS, **_edge_headers(), "X-Cache": "Miss from cloudfront"}
        if obj.get("CacheControl"):
            headers["Cache-Control"] = obj["CacheControl"]
        if obj.get("ETag"):
            headers["ETag"] = obj["ETag"]
        if content_type.startswith("text/html"):
            headers["Content-Security-Policy"] = content_security_policy(
                body.decode("utf-8", "replace"), connect
            )
        return Response(body, media_type=content_type, headers=headers)

    return Starlette(routes=[Route("/{path:path}", serve, methods=["GET"])])


def edge_from_settings(settings: Settings, s3: Any) -> Starlette:
    return edge_app(s3, settings.guest_bucket, connect_origins(settings))
