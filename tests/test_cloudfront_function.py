"""The guest-page CloudFront Function (`charters/cloudfront/guest_rewrite.js`), run under Node.

moto has no CloudFront Functions, so the function is evaluated by `tests/cloudfront_harness.js`
in a bare `vm` context with CloudFront-shaped viewer-request events. All cases go through one
Node process per module.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest

FUNCTION = Path(str(files("charters.cloudfront").joinpath("guest_rewrite.js")))
HARNESS = Path(__file__).with_name("cloudfront_harness.js")
MAX_BYTES = 10 * 1024  # CloudFront Functions code limit

SLUG = "may-30-xhqgmdh-k7w2q3zrjm4xvb5n"  # as the starter chooses it: date, ref, token
PAGE = f"/guest-pages/{SLUG}.html"
QS = {"utm_source": {"value": "email"}, "ref": {"value": "crew"}}
UPPER = "/g/May-30-XHQGMDH-K7W2Q3ZRJM4XVB5N"
MULTI_QS = {"tag": {"value": "a", "multiValue": [{"value": "a"}, {"value": "b"}]}}


def case(
    uri: str,
    querystring: dict[str, Any] | None = None,
    raw: str | None = None,
) -> dict[str, Any]:
    c: dict[str, Any] = {"uri": uri, "querystring": querystring or {}}
    if raw is not None:
        c["rawQueryString"] = raw
    return c


# (id, case, expected): expected is ("uri", new uri) for a forwarded request,
# ("301", location) for a redirect, ("404", None) for a generated Not Found.
TABLE: list[tuple[str, dict[str, Any], tuple[str, str | None]]] = [
    ("slug", case(f"/g/{SLUG}"), ("uri", PAGE)),
    ("slug-trailing-slash", case(f"/g/{SLUG}/"), ("uri", PAGE)),
    ("slug-with-query", case(f"/g/{SLUG}", QS), ("uri", PAGE)),
    ("slug-slash-with-query", case(f"/g/{SLUG}/", QS), ("uri", PAGE)),
    ("slug-64-chars", case("/g/" + "a" * 64), ("uri", "/guest-pages/" + "a" * 64 + ".html")),
    ("slug-one-char", case("/g/7"), ("uri", "/guest-pages/7.html")),
    ("upper-case", case(UPPER), ("301", f"/g/{SLUG}")),
    ("upper-case-slash", case(UPPER + "/"), ("301", f"/g/{SLUG}")),
    ("upper-case-query", case(UPPER, QS), ("301", f"/g/{SLUG}?utm_source=email&ref=crew")),
    (
        "all-upper-multi-query",
        case(f"/g/{SLUG.upper()}", MULTI_QS),
        ("301", f"/g/{SLUG}?tag=a&tag=b"),
    ),
    (
        "upper-case-raw-query",
        case(UPPER, QS, raw="utm_source=e%20mail&ref=crew"),
        ("301", f"/g/{SLUG}?utm_source=e%20mail&ref=crew"),
    ),
    ("dotdot", case("/g/.."), ("404", None)),
    ("dotdot-traversal", case("/g/../secret"), ("404", None)),
    ("encoded-dotdot", case("/g/a%2e%2e"), ("404", None)),
    ("encoded-slash", case("/g/a%2fb"), ("404", None)),
    ("empty-slug", case("/g/"), ("404", None)),
    ("empty-slug-double-slash", case("/g//"), ("404", None)),
    ("deep-path", case("/g/a/b"), ("404", None)),
    ("deep-presign-path", case(f"/g/{SLUG}/presign"), ("404", None)),
    ("two-trailing-slashes", case(f"/g/{SLUG}//"), ("404", None)),
    ("html-suffix", case("/g/slug.html"), ("404", None)),
    ("underscore", case("/g/may_30"), ("404", None)),
    ("slug-65-chars", case("/g/" + "a" * 65), ("404", None)),
    ("upper-case-65-chars", case("/g/" + "A" * 65), ("404", None)),
    ("index", case("/index.html"), ("uri", "/index.html")),
    ("root", case("/"), ("uri", "/")),
    ("guest-pages-direct", case("/guest-pages/x.html"), ("uri", "/guest-pages/x.html")),
    ("bare-g", case("/g"), ("uri", "/g")),
    ("g-prefix-lookalike", case("/gallery/x"), ("uri", "/gallery/x")),
    ("upper-G-prefix", case(f"/G/{SLUG}"), ("uri", f"/G/{SLUG}")),
]


@pytest.fixture(scope="module")
def results() -> dict[str, dict[str, Any]]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not on PATH: the CloudFront Function tests run it under Node")
    proc = subprocess.run(
        [node, str(HARNESS), str(FUNCTION)],
        input=json.dumps([c for _, c, _ in TABLE]),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, f"harness failed:\n{proc.stderr}"
    out = json.loads(proc.stdout)
    assert len(out) == len(TABLE)
    return {name: r for (name, _, _), r in zip(TABLE, out, strict=True)}


@pytest.mark.parametrize(("name", "given", "expected"), TABLE, ids=[name for name, _, _ in TABLE])
def test_guest_rewrite(
    results: dict[str, dict[str, Any]],
    name: str,
    given: dict[str, Any],
    expected: tuple[str, str | None],
) -> None:
    got = results[name]
    assert "error" not in got, got.get("error")
    out = got["result"]
    kind, value = expected
    if kind == "uri":
        assert "statusCode" not in out, out
        assert out["uri"] == value
        # Everything but the uri is the viewer's request, untouched.
        assert out["querystring"] == given["querystring"]
        assert out["method"] == "GET"
        assert out["headers"] == {"host": {"value": "queenofsandiego.com"}}
    elif kind == "301":
        assert out["statusCode"] == 301
        assert out["statusDescription"] == "Moved Permanently"
        assert out["headers"]["location"] == {"value": value}
    else:
        assert out == {"statusCode": 404, "statusDescription": "Not Found"}


def test_function_fits_cloudfront_limits() -> None:
    source = FUNCTION.read_bytes()
    assert len(source) < MAX_BYTES, f"{len(source)} bytes; CloudFront Functions allow 10 KB"
    text = source.decode("utf-8")
    assert "require(" not in text
    assert "fetch(" not in text
    assert "function handler(event)" in text


def test_function_ships_as_package_data() -> None:
    assert FUNCTION.is_file()
    assert FUNCTION.parent.name == "cloudfront"
    assert FUNCTION.parent.parent.name == "charters"
