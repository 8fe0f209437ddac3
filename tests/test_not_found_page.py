"""A guest page that does not exist is the brand's "page not found", as a 404, not S3's 403 XML:
CloudFront's custom error response (infra/charters.yaml) reads `guest-pages/not-found.html`,
which `charters ops publish-404` (locally: the seed) puts in the bucket; the local edge plays
the same response."""

from __future__ import annotations

from typing import Any

import httpx
from charters_dev import infra_stack
from charters_dev.edge import inline_hashes
from charters_dev.stack import DevStack

from charters.activities.guest_page import NOT_FOUND_PAGE
from charters.pages import render
from charters.settings import Settings


def test_the_distribution_answers_a_missing_page_with_the_branded_one() -> None:
    template = infra_stack.load_template()
    config = template["Resources"]["GuestDistribution"]["Properties"]["DistributionConfig"]
    errors = {e["ErrorCode"]: e for e in config["CustomErrorResponses"]}
    path = f"/{Settings().guest_key_prefix}{NOT_FOUND_PAGE}"
    for code in (403, 404):  # OAC turns a missing object into 403
        assert errors[code]["ResponseCode"] == 404
        assert errors[code]["ResponsePagePath"] == path


def test_the_page_fits_the_guest_pages_csp() -> None:
    """Served under the guest pages' response headers policy: its inline style must be one
    the static CSP allows, and it runs no script."""
    html = render("not_found.html")
    scripts, styles = inline_hashes(html)
    template = infra_stack.load_template()
    headers = template["Resources"]["GuestHeadersPolicy"]["Properties"]
    csp: Any = headers["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    policy = csp["ContentSecurityPolicy"]["ContentSecurityPolicy"]["Fn::Sub"]
    assert not scripts
    assert all(style in policy for style in styles)
    assert "Queen of San Diego" in html and "not find" in html


async def test_the_edge_serves_it_for_a_missing_slug(stack: DevStack, settings: Settings) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        page = await http.get(f"http://127.0.0.1:{settings.edge_port}/g/no-such-charter-x7q2")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "We could not find this charter page" in page.text
    assert "<Error>" not in page.text and "AccessDenied" not in page.text
    assert "style-src 'sha256-" in page.headers["content-security-policy"]


def test_guest_facing_pages_need_nothing_the_csp_refuses() -> None:
    """Served under `style-src 'sha256-…'` and `script-src 'sha256-…'`: an inline `style=`
    attribute or an `on…=` handler would be refused by the browser (the album's were)."""
    import re
    from pathlib import Path

    pages = Path(__file__).resolve().parent.parent / "charters" / "templates"
    for name in (
        "base.html",
        "guest_page.html",
        "album.html",
        "cancelled_page.html",
        "not_found.html",
    ):
        text = (pages / name).read_text()
        assert not re.search(r"\sstyle\s*=", text), name
        assert not re.search(r"\son[a-z]+\s*=", text), name
