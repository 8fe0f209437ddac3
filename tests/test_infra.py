"""infra/charters.yaml: linted, identical to what the local edge does, least-privilege roles, and
deployed into moto as the local stack (the suite's settings come from the stack's outputs)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from charters_dev import infra_stack
from charters_dev.edge import connect_origins, content_security_policy
from charters_dev.stack import DevStack

from charters.settings import Settings
from charters.worker.wiring import AwsClients, aws_client

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra" / "charters.yaml"
CFN_LINT = str(Path(sys.executable).parent / "cfn-lint")  # pinned in the dev extra


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return infra_stack.load_template(TEMPLATE)


def resource(template: dict[str, Any], logical: str) -> dict[str, Any]:
    props: dict[str, Any] = template["Resources"][logical]["Properties"]
    return props


def test_cfn_lint_is_clean() -> None:
    lint = subprocess.run([CFN_LINT, str(TEMPLATE)], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_cfn_lint_would_see_a_broken_template(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(TEMPLATE.read_text().replace("SSEAlgorithm: AES256", "SSEAlgorithm: AES"))
    lint = subprocess.run([CFN_LINT, str(broken)], capture_output=True, text=True)
    assert lint.returncode != 0 and "E3030" in lint.stdout, lint.stdout + lint.stderr


def test_published_function_is_the_tested_function(template: dict[str, Any]) -> None:
    props = resource(template, "GuestRewriteFunction")
    source = (ROOT / "charters" / "cloudfront" / "guest_rewrite.js").read_text()
    assert props["FunctionCode"] == source
    assert props["AutoPublish"] is True
    assert props["FunctionConfig"]["Runtime"] == "cloudfront-js-2.0"
    assert len(source.encode()) <= 10 * 1024  # CloudFront Functions' code size limit
    behaviours = resource(template, "GuestDistribution")["DistributionConfig"]["CacheBehaviors"]
    guest = next(b for b in behaviours if b["PathPattern"] == "/g/*")
    assert guest["FunctionAssociations"] == [
        {
            "EventType": "viewer-request",
            "FunctionARN": {"Fn::GetAtt": ["GuestRewriteFunction", "FunctionMetadata.FunctionARN"]},
        }
    ]
    assert guest["ResponseHeadersPolicyId"] == {"Ref": "GuestHeadersPolicy"}


def test_response_headers_policy_carries_the_local_edges_csp(template: dict[str, Any]) -> None:
    """The static CSP equals what the local edge computes from the templates served, so a change
    to the guest page's inline script or style fails here until the template follows."""
    config = resource(template, "GuestHeadersPolicy")["ResponseHeadersPolicyConfig"]
    csp_sub = config["SecurityHeadersConfig"]["ContentSecurityPolicy"]["ContentSecurityPolicy"]
    settings = Settings(
        profile="aws",
        scc_api_url="https://abc123.execute-api.us-west-2.amazonaws.com/prod",
        aws_endpoint_url=None,  # the session stack exports its moto endpoint
    )
    values = {
        "SccApiOrigin": "https://abc123.execute-api.us-west-2.amazonaws.com",
        "AWS::Region": settings.aws_region,
        "GuestBucketName": settings.guest_bucket,
    }
    deployed = re.sub(r"\$\{([^}]+)\}", lambda m: values[m.group(1)], csp_sub["Fn::Sub"])
    pages = ROOT / "charters" / "templates"
    html = (pages / "base.html").read_text() + (pages / "guest_page.html").read_text()
    assert deployed == content_security_policy(html, connect_origins(settings))
    assert len(deployed) <= 1783  # CloudFront's limit on a CSP header value in a policy


def statements(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    """The role's inline statements, plus those of any AWS::IAM::Policy attached to it."""
    props = resource(template, role)
    found = [s for p in props["Policies"] for s in p["PolicyDocument"]["Statement"]]
    for res in template["Resources"].values():
        if res["Type"] == "AWS::IAM::Policy" and {"Ref": role} in res["Properties"]["Roles"]:
            found += res["Properties"]["PolicyDocument"]["Statement"]
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


ROLES = ["WorkerRole", "ConfirmRole"]


SMS_TO_PHONES = {"sns:Publish", "sns:CheckIfPhoneNumberIsOptedOut"}
"""The one grant on "*": SMS to a phone number has no resource ARN. It stands only beside a Deny of
sns:Publish on every SNS ARN (the SNS guide's phone-numbers-only policy)."""
NO_TOPICS = {"Fn::Sub": "arn:${AWS::Partition}:sns:*:*:*"}


def phone_numbers_only(statement: dict[str, Any], beside: list[dict[str, Any]]) -> bool:
    if statement["Effect"] == "Deny":
        return statement["Action"] == "sns:Publish" and statement["Resource"] == NO_TOPICS
    denied = any(s["Effect"] == "Deny" and s["Resource"] == NO_TOPICS for s in beside)
    return set(as_list(statement["Action"])) <= SMS_TO_PHONES and denied


@pytest.mark.parametrize("role", ROLES)
def test_roles_grant_no_wildcard_action_or_resource(template: dict[str, Any], role: str) -> None:
    found = statements(template, role)
    for statement in found:
        if phone_numbers_only(statement, found):
            continue
        assert statement["Effect"] == "Allow"
        for action in as_list(statement["Action"]):
            assert "*" not in action, (role, action)
        for res in as_list(statement["Resource"]):
            assert res != "*", (role, statement["Sid"])


def actions(template: dict[str, Any], role: str) -> set[str]:
    return {a for s in statements(template, role) for a in as_list(s["Action"])}


def test_only_the_worker_reaches_aws_beyond_its_secrets(template: dict[str, Any]) -> None:
    assert actions(template, "ConfirmRole") == {"secretsmanager:GetSecretValue"}
    # the codec server reads its key ring and token from its own files: no AWS role at all
    assert "CodecServerRole" not in template["Resources"]


def secrets_of(template: dict[str, Any], role: str) -> set[str]:
    return {
        r["Ref"]
        for s in statements(template, role)
        if s["Action"] == "secretsmanager:GetSecretValue"
        for r in as_list(s["Resource"])
    }


def test_each_secret_is_granted_to_its_readers_only(template: dict[str, Any]) -> None:
    """Who reads what (charters/worker/wiring.py, the confirm-server command): the worker the
    calendar token, SCC key and the magic-link key (it signs links); confirm the magic-link key
    (it verifies them). One place per secret: no codec key ring in Secrets Manager."""
    assert secrets_of(template, "WorkerRole") == {
        "DashboardTokenSecret",
        "SccServiceKeySecret",
        "MagicLinkKeySecret",
    }
    assert secrets_of(template, "ConfirmRole") == {"MagicLinkKeySecret"}
    kinds = {
        k for k, r in template["Resources"].items() if r["Type"] == "AWS::SecretsManager::Secret"
    }
    assert kinds == {"DashboardTokenSecret", "SccServiceKeySecret", "MagicLinkKeySecret"}


def test_worker_reads_sccs_configuration_only_and_alias_rights_need_an_alias(
    template: dict[str, Any],
) -> None:
    worker = resource(template, "WorkerRole")
    inline = {
        a
        for p in worker["Policies"]
        for s in p["PolicyDocument"]["Statement"]
        for a in as_list(s["Action"])
    }
    lambda_actions = {a for a in inline if a.startswith("lambda:")}
    assert lambda_actions == {
        "lambda:GetFunctionConfiguration",
        "lambda:UpdateFunctionConfiguration",
    }
    alias = template["Resources"]["WorkerSccAliasPolicy"]
    assert alias["Condition"] == "HasSccAlias"
    assert template["Conditions"]["HasSccAlias"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "SccLambdaAlias"}, ""]}]
    }
    by_action = {
        a: s["Resource"]["Fn::Sub"]
        for s in alias["Properties"]["PolicyDocument"]["Statement"]
        for a in as_list(s["Action"])
    }
    assert "lambda:GetFunction" not in by_action
    assert by_action["lambda:UpdateAlias"].endswith(
        ":function:${SccLambdaFunctionName}:${SccLambdaAlias}"
    )
    assert by_action["lambda:PublishVersion"].endswith(":function:${SccLambdaFunctionName}")


def test_trust_policies_name_the_account(template: dict[str, Any]) -> None:
    """Confused-deputy guard: a service principal assumes a process role only for this
    account's tasks (aws:SourceAccount and aws:SourceArn)."""
    for logical, res in template["Resources"].items():
        if res["Type"] != "AWS::IAM::Role":
            continue
        for st in res["Properties"]["AssumeRolePolicyDocument"]["Statement"]:
            if "Fn::If" in st:
                cond, when, _ = st["Fn::If"]
                assert cond == "HasHostRole" and when["Principal"] == {
                    "AWS": {"Ref": "HostRoleArn"}
                }
                continue
            assert "Service" in st["Principal"], logical
            assert st["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
            assert "aws:SourceArn" in st["Condition"]["ArnLike"], logical


def test_worker_may_make_every_aws_call_the_activities_make(template: dict[str, Any]) -> None:
    """Each boto3 call in charters/activities/ maps to an IAM action the worker role grants."""
    calls = set()
    for path in (ROOT / "charters" / "activities").glob("*.py"):
        calls |= set(
            re.findall(
                r"\.([a-z_]+)\(\s*\n?\s*(?:TableName|Bucket|FunctionName|"
                r"DistributionId|SecretId|FromEmailAddress|QueueUrl)=",
                path.read_text(),
            )
        )
    to_action = {
        "get_item": "dynamodb:GetItem",
        "put_item": "dynamodb:PutItem",
        "delete_item": "dynamodb:DeleteItem",
        "update_item": "dynamodb:UpdateItem",
        "put_object": "s3:PutObject",
        "get_object": "s3:GetObject",
        "paginate": "s3:ListBucket",
        "create_invalidation": "cloudfront:CreateInvalidation",
        "send_email": "ses:SendEmail",
        "get_function_configuration": "lambda:GetFunctionConfiguration",
        "get_alias": "lambda:GetAlias",
        "publish_version": "lambda:PublishVersion",
        "update_alias": "lambda:UpdateAlias",
        "update_function_configuration": "lambda:UpdateFunctionConfiguration",
        "get_secret_value": "secretsmanager:GetSecretValue",
        "receive_message": "sqs:ReceiveMessage",
        "delete_message": "sqs:DeleteMessage",
    }
    assert calls, "no boto3 calls found: the pattern above is stale"
    unknown = calls - set(to_action)
    assert not unknown, f"map these calls to IAM actions: {unknown}"
    assert {to_action[c] for c in calls} <= actions(template, "WorkerRole")


# ---- the guest site beside the business's website -----------------------------------------


def params_with(template: dict[str, Any], **given: str) -> dict[str, str]:
    defaults = {k: str(v.get("Default", "")) for k, v in template["Parameters"].items()}
    return {**defaults, **given, "AWS::StackName": "charters", "AWS::Region": "us-west-2"}


def test_the_bucket_is_its_own_and_dot_free(template: dict[str, Any]) -> None:
    """`queenofsandiego.com` is exactly the name an S3-hosted website already has (CREATE
    fails), and a dotted name breaks TLS of https://<bucket>.s3.<region>.amazonaws.com."""
    param = template["Parameters"]["GuestBucketName"]
    pattern = re.compile(param["AllowedPattern"])
    assert pattern.fullmatch(param["Default"]) and "." not in param["Default"]
    assert not pattern.fullmatch("queenofsandiego.com")
    assert Settings.model_fields["guest_bucket"].default == param["Default"]
    assert template["Parameters"]["GuestSiteAliases"]["Default"] == ""
    assert "subdomain" in template["Parameters"]["GuestSiteAliases"]["Description"]
    assert urlsplit(Settings.model_fields["guest_site_url"].default).hostname.startswith("guests.")
    rule = template["Rules"]["AliasesNeedACertificate"]
    assert rule["Assertions"][0]["Assert"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AcmCertificateArn"}, ""]}]
    }


@pytest.mark.parametrize(
    ("given", "origins"),
    [
        ({"GuestSiteAliases": "guests.example.com"}, ["https://guests.example.com"]),
        (
            {"GuestSiteAliases": "guests.example.com,fotos.example.com"},
            ["https://guests.example.com", "https://fotos.example.com"],
        ),
        ({}, ["https://*.cloudfront.net"]),
        ({"UploadAllowedOrigins": "*"}, ["*"]),
    ],
)
def test_upload_origins_come_from_the_aliases(
    template: dict[str, Any], given: dict[str, str], origins: list[str]
) -> None:
    rule = resource(template, "GuestBucket")["CorsConfiguration"]["CorsRules"][0]
    resolved = infra_stack.resolve(rule["AllowedOrigins"], params_with(template, **given))
    as_given = resolved.split(",") if isinstance(resolved, str) else resolved  # a list parameter
    assert as_given == origins


def test_uploads_are_served_sandboxed(template: dict[str, Any]) -> None:
    behaviours = resource(template, "GuestDistribution")["DistributionConfig"]["CacheBehaviors"]
    photos = next(b for b in behaviours if b["PathPattern"] == "/photos/*")
    assert photos["ResponseHeadersPolicyId"] == {"Ref": "PhotosHeadersPolicy"}
    config = resource(template, "PhotosHeadersPolicy")["ResponseHeadersPolicyConfig"]
    security = config["SecurityHeadersConfig"]
    csp = security["ContentSecurityPolicy"]
    assert csp == {"Override": True, "ContentSecurityPolicy": "default-src 'none'; sandbox"}
    assert security["ContentTypeOptions"] == {"Override": True}


def test_guest_data_does_not_live_forever(template: dict[str, Any]) -> None:
    rules = {
        r["Id"]: r for r in resource(template, "GuestBucket")["LifecycleConfiguration"]["Rules"]
    }
    assert rules["old-versions"]["NoncurrentVersionExpiration"]["NoncurrentDays"] <= 90
    assert rules["old-versions"]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] <= 7
    assert rules["photos"]["Prefix"] == "photos/"
    assert rules["photos"]["ExpirationInDays"] == {"Ref": "PhotoRetentionDays"}
    assert rules["guest-pages"]["Prefix"] == "guest-pages/"
    assert all(r["Status"] == "Enabled" for r in rules.values())


@pytest.mark.parametrize(
    "logical",
    [
        "LedgerTable",
        "GuestBucket",
        "DashboardTokenSecret",
        "SccServiceKeySecret",
        "MagicLinkKeySecret",
        "BounceDeadLetterQueue",
    ],
)
def test_data_and_secrets_survive_stack_deletion_and_replacement(
    template: dict[str, Any], logical: str
) -> None:
    res = template["Resources"][logical]
    assert res["DeletionPolicy"] == "Retain" and res["UpdateReplacePolicy"] == "Retain"


def test_dead_letters_raise_an_alarm(template: dict[str, Any]) -> None:
    alarm = resource(template, "BounceDeadLetterAlarm")
    assert alarm["Namespace"] == "AWS/SQS"
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["BounceDeadLetterQueue", "QueueName"]}}
    ]
    assert alarm["Threshold"] == 0 and alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    redrive = resource(template, "BounceQueue")["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["BounceDeadLetterQueue", "Arn"]}


def test_the_suite_runs_on_the_deployed_stacks_outputs(
    stack: DevStack, settings: Settings, aws: AwsClients
) -> None:
    cfn = aws_client(settings, "cloudformation")
    deployed = cfn.describe_stacks(StackName=infra_stack.STACK_NAME)["Stacks"][0]
    assert deployed["StackStatus"] == "CREATE_COMPLETE"
    outputs = infra_stack.deploy(aws, settings)  # idempotent: the same answer a second time
    assert settings.distribution_id == outputs["DistributionId"]
    assert settings.ledger_table == outputs["LedgerTableName"]
    assert settings.guest_bucket == outputs["GuestBucketName"]
    assert stack.extra_env["CHARTERS_BOUNCE_QUEUE_URL"] == outputs["BounceQueueUrl"]
    assert stack.extra_env["CHARTERS_SES_CONFIGURATION_SET"] == outputs["SesConfigurationSet"]

    ttl = aws.dynamodb.describe_time_to_live(TableName=settings.ledger_table)
    assert ttl["TimeToLiveDescription"]["TimeToLiveStatus"] == "ENABLED"
    backups = aws.dynamodb.describe_continuous_backups(TableName=settings.ledger_table)
    pitr = backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
    assert pitr["PointInTimeRecoveryStatus"] == "ENABLED"
    cors = aws.s3.get_bucket_cors(Bucket=settings.guest_bucket)["CORSRules"]
    assert "POST" in cors[0]["AllowedMethods"]
    lifecycle = aws.s3.get_bucket_lifecycle_configuration(Bucket=settings.guest_bucket)
    assert {r["ID"] for r in lifecycle["Rules"]} >= {"old-versions", "photos", "guest-pages"}
    aws.sesv2.get_configuration_set(ConfigurationSetName=outputs["SesConfigurationSet"])


def test_mail_events_topic_delivers_to_the_bounce_queue(
    stack: DevStack, settings: Settings, aws: AwsClients
) -> None:
    """An SES bounce published on the template's topic reaches SQS in SNS's envelope; the
    template subscribes the queue the worker reads. (The stack's worker drains that queue itself,
    so the delivery is read from a second queue subscribed the same way.)"""
    outputs = infra_stack.deploy(aws, settings)
    sns, sqs = aws_client(settings, "sns"), aws_client(settings, "sqs")
    subscribed = sns.list_subscriptions_by_topic(TopicArn=outputs["MailEventsTopicArn"])
    queue_arn = sqs.get_queue_attributes(
        QueueUrl=outputs["BounceQueueUrl"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    assert queue_arn in {s["Endpoint"] for s in subscribed["Subscriptions"]}
    probe = sqs.create_queue(QueueName="bounce-probe")["QueueUrl"]
    probe_arn = sqs.get_queue_attributes(QueueUrl=probe, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=outputs["MailEventsTopicArn"], Protocol="sqs", Endpoint=probe_arn)
    event = {"eventType": "Bounce", "bounce": {"bounceType": "Permanent"}, "mail": {}}
    sns.publish(TopicArn=outputs["MailEventsTopicArn"], Message=json.dumps(event))
    got = sqs.receive_message(QueueUrl=probe, WaitTimeSeconds=5)
    envelope = json.loads(got["Messages"][0]["Body"])
    assert json.loads(envelope["Message"]) == event  # SNS's envelope, SES's event inside


def test_what_moto_skips_is_seeded_or_named_in_the_readme(
    stack: DevStack, settings: Settings, aws: AwsClients
) -> None:
    skipped = infra_stack.skipped_types(aws, settings)
    known = set(infra_stack.BESIDE) | set(infra_stack.NOT_EMULATED)
    assert skipped <= known, f"moto skips types nobody seeds or names: {skipped - known}"
    readme = (ROOT / "docs" / "local-stack.md").read_text()
    for kind in known | set(infra_stack.IGNORED_PROPERTIES):
        assert f"`{kind}`" in readme, f"docs/local-stack.md does not list {kind}"


def test_sandbox_recipients_only_while_in_the_sandbox(template: dict[str, Any]) -> None:
    """In the sandbox SES authorizes a send against the recipient's identity as well: the
    worker may send to verified identities only while SesSandbox=true (default false)."""
    policy = template["Resources"]["WorkerSesSandboxPolicy"]
    assert policy["Condition"] == "InSesSandbox"
    assert template["Parameters"]["SesSandbox"]["Default"] == "false"
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Action"] == "ses:SendEmail"
    assert statement["Condition"]["StringLike"]["ses:FromAddress"] == {"Fn::Sub": "*@${MailDomain}"}
    assert not infra_stack.condition("InSesSandbox", params_with(template))
    assert infra_stack.condition("InSesSandbox", params_with(template, SesSandbox="true"))
