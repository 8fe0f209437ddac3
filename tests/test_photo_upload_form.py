"""The guest page's photo upload sends exactly what real S3 checks against the presigned POST's
policy, and nothing else.

moto does not enforce POST policies, so the browser test's upload succeeding proves nothing about
the fields. Here the page's own script runs in Node (a few lines of DOM stand-in: the form, the
file input, fetch, FormData and XMLHttpRequest record what the script does), against a presigned
POST made by boto3 exactly as SCC makes it (the stand-in's `presigned_post`: a `Content-Type`
field and condition, a size range). The recorded multipart fields are then checked by S3's rules
(Amazon S3 User Guide, "Creating a POST policy" / "Creating an HTML form"): every form field except
`file`, `policy`, `x-amz-signature` and `x-ignore-*` must be named by a condition, each once; every
condition must be met by the fields; the file is the last field. A field the policy does not
list is the real service's "Invalid according to Policy: Extra input fields".
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from typing import Any

import boto3
import pytest
from botocore.config import Config
from charters_dev.isolated import sample_charter

from charters.activities.guest_page import render_guest_page
from charters.models import GuestPageRequest, parse_booking

BUCKET = "qosd-guest-pages"  # dot-free: the virtual-hosted TLS name stays *.s3.<region>
REGION = "us-west-2"
EXEMPT = {"file", "policy", "x-amz-signature"}

HARNESS = r"""
const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const sent = { fetches: [], posts: [] };
let submit = null;
const el = (props) => Object.assign({ textContent: '', hidden: true, value: 0,
  addEventListener(type, fn) { if (type === 'submit') { submit = fn; } } }, props);
const elements = {
  upload: el({ dataset: { presign: input.presign_url } }),
  photo: el({ files: [{ name: 'sunset.png', type: 'image/png', size: 4 }] }),
  'upload-status': el({}), progress: el({}),
};
global.document = { getElementById: (id) => elements[id] };
global.fetch = (url) => { sent.fetches.push(url);
  return Promise.resolve({ ok: true, status: 200, json: () => Promise.resolve(input.presign) }); };
global.FormData = class { constructor() { this.entries = []; }
  append(k, v) { this.entries.push([k, typeof v === 'object' ? { file: v.name } : v]); } };
global.XMLHttpRequest = class { constructor() { this.upload = {}; }
  open(method, url) { this.method = method; this.url = url; }
  send(data) { sent.posts.push({ method: this.method, url: this.url, fields: data.entries });
    this.status = 204; setTimeout(() => this.onload(), 0); } };
eval(input.script);
submit({ preventDefault() {} });
setTimeout(() => { sent.status = elements['upload-status'].textContent;
  process.stdout.write(JSON.stringify(sent)); }, 200);
"""


def scc_presign(content_type: str) -> dict[str, Any]:
    """What SCC answers on GET /g/{event_id}/presign (devtools scc_standin.presigned_post), with
    the presign style the runbook asks of SCC: SigV4, regional virtual-hosted, dot-free bucket."""
    s3 = boto3.client(
        "s3",
        region_name=REGION,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        config=Config(signature_version="s3v4", s3={"addressing_style": "virtual"}),
    )
    post: dict[str, Any] = s3.generate_presigned_post(
        Bucket=BUCKET,
        Key="photos/evt-1/0a1b2c3d-sunset.png",
        Fields={"Content-Type": content_type},
        Conditions=[["content-length-range", 1, 10 * 1024 * 1024], {"Content-Type": content_type}],
        ExpiresIn=3600,
    )
    return post


def s3_refusal(policy_b64: str, url: str, fields: list[tuple[str, Any]]) -> str | None:
    """Why S3 would refuse this multipart POST under this policy, or None."""
    policy = json.loads(base64.b64decode(policy_b64))
    named: dict[str, Any] = {}
    ranges = []
    for cond in policy["conditions"]:
        if isinstance(cond, dict):
            ((k, v),) = cond.items()
            named[k.lower()] = ("eq", v)
        elif cond[0] == "content-length-range":
            ranges.append(cond)
        else:
            named[cond[1].lstrip("$").lower()] = (cond[0], cond[2])
    if not fields or fields[-1][0] != "file":
        return "the file must be the last field"
    seen: dict[str, Any] = {}
    for key, value in fields[:-1]:
        name = key.lower()
        if name in seen:
            return f"more than one value for {key}"
        seen[name] = value
        if name in EXEMPT or name.startswith("x-ignore-"):
            continue
        if name not in named:
            return f"Invalid according to Policy: Extra input fields: {key}"
    for name, (op, expected) in named.items():
        given = (BUCKET if BUCKET in url else None) if name == "bucket" else seen.get(name)
        if given is None:
            return f"Invalid according to Policy: Policy Condition failed: {name} missing"
        met = given == expected if op == "eq" else str(given).startswith(expected)
        if not met:
            return f"Invalid according to Policy: Policy Condition failed: {name}"
    return None


def run_page_script(html: str, presign: dict[str, Any]) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    scripts = re.findall(r"<script>(.*?)</script>", html, re.DOTALL)
    assert len(scripts) == 1, "the guest page has one inline script"
    presign_url = re.search(r'data-presign="([^"]+)"', html)
    assert presign_url
    answer = subprocess.run(
        [node, "-e", HARNESS],
        input=json.dumps(
            {"script": scripts[0], "presign": presign, "presign_url": presign_url.group(1)}
        ),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert answer.returncode == 0, answer.stderr
    result: dict[str, Any] = json.loads(answer.stdout)
    return result


@pytest.fixture(scope="module")
def page() -> str:
    charter = parse_booking(sample_charter("UPLOAD1")).crew_view("https://guests.example.com/g/s")
    return render_guest_page(
        GuestPageRequest(charter=charter, event_id="evt-1"),
        "https://abc123.execute-api.us-west-2.amazonaws.com/prod",
    )


def test_the_form_sends_only_the_policys_fields(page: str) -> None:
    presign = scc_presign("image/png")
    sent = run_page_script(page, presign)
    assert sent["fetches"] == [
        "https://abc123.execute-api.us-west-2.amazonaws.com/prod/g/evt-1/presign"
        "?filename=sunset.png&content_type=image%2Fpng"
    ]
    (post,) = sent["posts"]
    assert post["method"] == "POST" and post["url"] == presign["url"]
    fields = [tuple(f) for f in post["fields"]]
    assert s3_refusal(presign["fields"]["policy"], post["url"], fields) is None
    assert [k for k, _ in fields[:-1]] == list(presign["fields"])  # nothing added, nothing lost
    assert sent["status"] == "Uploaded 1 photo. Thank you!"


def test_the_check_refuses_what_real_s3_refuses() -> None:
    """The old page appended its own Content-Type; a field SCC's policy does not name, e.g. an
    `acl`, is refused the same way: the check is not vacuous."""
    presign = scc_presign("image/png")
    good = [*presign["fields"].items(), ("file", {"file": "x.png"})]
    policy, url = presign["fields"]["policy"], presign["url"]
    assert s3_refusal(policy, url, good) is None
    doubled = [*presign["fields"].items(), ("Content-Type", "image/png"), ("file", {})]
    assert s3_refusal(policy, url, doubled) == "more than one value for Content-Type"
    extra = [*presign["fields"].items(), ("acl", "public-read"), ("file", {})]
    assert s3_refusal(policy, url, extra) == (
        "Invalid according to Policy: Extra input fields: acl"
    )
    without_type = [(k, v) for k, v in good if k != "Content-Type"]
    assert "Content-Type".lower() in (s3_refusal(policy, url, without_type) or "")
    file_first = [("file", {}), *presign["fields"].items()]
    assert s3_refusal(policy, url, file_first) == "the file must be the last field"


def test_the_presign_style_is_regional_virtual_hosted_with_a_dot_free_bucket() -> None:
    """TLS: `<bucket>.s3.<region>.amazonaws.com` matches the wildcard certificate only when the
    bucket name has no dot; the CSP's connect-src names exactly this origin."""
    url = scc_presign("image/jpeg")["url"]
    assert url == f"https://{BUCKET}.s3.{REGION}.amazonaws.com/"
    assert "." not in BUCKET
