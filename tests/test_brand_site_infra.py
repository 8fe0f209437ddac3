"""infra/brand-site.yaml (one brand's site as a stack of its own) and the main template's roster
and SMS grants: linted, the same rewrite function as the product's, SMS to phone numbers only."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from charters_dev import infra_stack

ROOT = Path(__file__).resolve().parent.parent
CFN_LINT = str(Path(sys.executable).parent / "cfn-lint")


def test_brand_site_template_is_lint_clean() -> None:
    lint = subprocess.run(
        [CFN_LINT, str(infra_stack.BRAND_TEMPLATE)], capture_output=True, text=True
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_brand_site_publishes_the_tested_function_for_the_rewrite_scheme_only() -> None:
    template = infra_stack.load_template(infra_stack.BRAND_TEMPLATE)
    function = template["Resources"]["GuestRewriteFunction"]
    source = (ROOT / "charters" / "cloudfront" / "guest_rewrite.js").read_text()
    assert function["Properties"]["FunctionCode"] == source
    assert function["Condition"] == "Rewrite"
    assert template["Conditions"]["Rewrite"] == {"Fn::Equals": [{"Ref": "PathScheme"}, "rewrite"]}


def statements(template: dict[str, Any], logical: str) -> list[dict[str, Any]]:
    props = template["Resources"][logical]["Properties"]
    return list(props["PolicyDocument"]["Statement"])


def test_the_worker_texts_phone_numbers_only_and_reads_the_roster() -> None:
    template = infra_stack.load_template()
    found = {s["Sid"]: s for s in statements(template, "WorkerRosterAndSmsPolicy")}
    assert found["ReadTheCrewRoster"]["Action"] == "dynamodb:GetItem"
    assert found["ReadTheCrewRoster"]["Resource"] == {"Fn::GetAtt": ["CrewTable", "Arn"]}
    deny = found["NoTopicsOrEndpoints"]
    assert deny["Effect"] == "Deny" and deny["Action"] == "sns:Publish"
    assert deny["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:sns:*:*:*"}
    assert set(found["TextPhoneNumbers"]["Action"]) == {
        "sns:Publish",
        "sns:CheckIfPhoneNumberIsOptedOut",
    }


def test_a_brand_sites_worker_grants_cover_its_bucket_distribution_and_domain() -> None:
    template = infra_stack.load_template(infra_stack.BRAND_TEMPLATE)
    actions = {a for s in statements(template, "WorkerBrandPolicy") for a in _list(s["Action"])}
    assert {
        "s3:PutObject",
        "s3:GetObject",
        "s3:ListBucket",
        "cloudfront:CreateInvalidation",
        "ses:SendEmail",
    } <= actions


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
