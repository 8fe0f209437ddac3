"""The local stack from the production template: `infra/charters.yaml` deployed into moto's
CloudFormation, so local and production cannot drift.

moto's CloudFormation creates some resource types and skips the rest with a warning (and it
ignores some properties of the ones it creates). What it skips is seeded beside the stack here,
from the template's own properties, or is played by a local stand-in; `BESIDE` and
`NOT_EMULATED` say which, and the README lists both (tests/test_infra.py keeps them honest).
Outputs that name a skipped resource are dropped by moto, so `deploy` fills them in itself.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from botocore.exceptions import ClientError

from charters.settings import Settings
from charters.worker.wiring import AwsClients, aws_client

TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / "charters.yaml"
BRAND_TEMPLATE = TEMPLATE.with_name("brand-site.yaml")
STACK_NAME = "charters"

# Resource types moto's CloudFormation skips, and what stands in for each locally.
BESIDE = {
    "AWS::SecretsManager::Secret": "created by name through Secrets Manager, random values",
    "AWS::SES::EmailIdentity": "the domain and the sender address verified through SES v2",
    "AWS::SES::ConfigurationSet": "created through SES v2",
    "AWS::CloudFront::Distribution": "created through CloudFront (one S3 origin)",
    "AWS::CloudFront::OriginAccessControl": "created through CloudFront",
}
NOT_EMULATED = {
    "AWS::CloudFront::Function": "the local edge runs its rules (edge.py, tested against Node)",
    "AWS::CloudFront::ResponseHeadersPolicy": "the local edge adds the same CSP and headers",
    "AWS::SES::ConfigurationSetEventDestination": "moto publishes no SES events to SNS",
    "AWS::S3::BucketPolicy": "moto does not evaluate bucket policies",
    "AWS::SNS::TopicPolicy": "moto does not evaluate topic policies",
    "AWS::SQS::QueuePolicy": "moto does not evaluate queue policies",
    "AWS::CloudWatch::Alarm": "no metrics locally; the alarms' wiring is checked in tests",
}
# Properties moto's CloudFormation ignores on resources it does create, applied beside it.
IGNORED_PROPERTIES = {
    "AWS::DynamoDB::Table": "TimeToLiveSpecification, PointInTimeRecoverySpecification",
    "AWS::S3::Bucket": "CorsConfiguration, LifecycleConfiguration",
}


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags: `!Ref x` -> {"Ref": x}, `!Sub s` -> {"Fn::Sub": s}."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _tag)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    data = yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    assert isinstance(data, dict)
    return data


def parameters(settings: Settings) -> dict[str, str]:
    """The template's parameters from the settings, as a deployment sets them."""
    api = urlsplit(settings.scc_api_url)
    prefix = settings.secret_dashboard_token.removesuffix("dashboard-token")
    return {
        "LedgerTableName": settings.ledger_table,
        "GuestBucketName": settings.guest_bucket,
        "UploadAllowedOrigins": "*",  # the local edge's origin changes with its port
        "MailDomain": settings.mail_from.split("@", 1)[1],
        "ConfigurationSetName": str(getattr(settings, "ses_configuration_set", None) or "charters"),
        "SecretPrefix": prefix,
        "SccEventsTableName": settings.events_table,
        "SccLambdaFunctionName": settings.scc_lambda_function,
        "SccApiOrigin": f"{api.scheme}://{api.netloc}",
        "CalendarUrl": settings.calendar_url,
        "CrewTableName": settings.crew_table,
    }


def resolve(value: Any, params: dict[str, str]) -> Any:
    """`Ref` to a parameter, `Fn::Sub`/`Join`/`Split` over parameters, `Fn::If` and the
    conditions' own functions: enough for the names and lists in the template."""
    if isinstance(value, list):
        return [resolve(item, params) for item in value]
    if not isinstance(value, dict) or len(value) != 1:
        return value
    ((fn, arg),) = value.items()
    if fn == "Ref":
        return params[arg]
    if fn == "Fn::Sub":
        text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        names = {**params, **{k: str(resolve(v, params)) for k, v in extra.items()}}
        for name, given in names.items():
            text = text.replace("${" + name + "}", str(given))
        return text
    if fn == "Fn::Join":
        items = resolve(arg[1], params)
        items = items.split(",") if isinstance(items, str) else items
        return str(arg[0]).join(str(i) for i in items)
    if fn == "Fn::Split":
        return str(resolve(arg[1], params)).split(arg[0])
    if fn == "Fn::Equals":
        return str(resolve(arg[0], params)) == str(resolve(arg[1], params))
    if fn == "Fn::Not":
        return not resolve(arg[0], params)
    if fn == "Condition":
        return condition(arg, params)
    if fn == "Fn::If":
        return resolve(arg[1] if condition(arg[0], params) else arg[2], params)
    return value


def condition(name: str, params: dict[str, str], template: dict[str, Any] | None = None) -> bool:
    """A template condition evaluated over the parameters (as CloudFormation does)."""
    return bool(resolve((template or load_template())["Conditions"][name], params))


def _skipped_by_condition(
    resource: dict[str, Any], params: dict[str, str], template: dict[str, Any] | None = None
) -> bool:
    return "Condition" in resource and not condition(resource["Condition"], params, template)


def deploy(
    aws: AwsClients,
    settings: Settings,
    template_path: Path = TEMPLATE,
    stack_name: str = STACK_NAME,
    given: dict[str, str] | None = None,
) -> dict[str, str]:
    """Creates (once) the stack in moto, seeds what moto skips, returns the stack's outputs.
    `given`: the template's parameters (default: the main template's, from the settings)."""
    cfn = aws_client(settings, "cloudformation")
    template = load_template(template_path)
    given = parameters(settings) if given is None else given
    defaults = {k: str(v.get("Default", "")) for k, v in template["Parameters"].items()}
    params = {**defaults, **given, "AWS::StackName": stack_name}
    try:
        cfn.describe_stacks(StackName=stack_name)
    except ClientError:
        cfn.create_stack(
            StackName=stack_name,
            TemplateBody=template_path.read_text(),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in given.items()],
            Capabilities=["CAPABILITY_NAMED_IAM"],
        )
        cfn.get_waiter("stack_create_complete").wait(StackName=stack_name)
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    created = {
        r["LogicalResourceId"]
        for r in cfn.list_stack_resources(StackName=stack_name)["StackResourceSummaries"]
        if r.get("PhysicalResourceId")
    }
    resources: dict[str, Any] = template["Resources"]
    for logical, resource in resources.items():
        props = resource.get("Properties", {})
        if _skipped_by_condition(resource, params, template):
            continue
        if logical in created:
            _ignored_properties(aws, resource["Type"], props, params)
            continue
        physical = _beside(aws, settings, resource["Type"], props, params)
        if physical is not None:
            outputs.update(_outputs_of(template, logical, physical))
    return outputs


def skipped_types(aws: AwsClients, settings: Settings) -> set[str]:
    """Resource types of the deployed stack that moto did not create (it lists them with neither
    a physical id nor a type)."""
    cfn = aws_client(settings, "cloudformation")
    summaries = cfn.list_stack_resources(StackName=STACK_NAME)["StackResourceSummaries"]
    created = {r["LogicalResourceId"] for r in summaries if r.get("PhysicalResourceId")}
    template = load_template()
    defaults = {k: str(v.get("Default", "")) for k, v in template["Parameters"].items()}
    params = {**defaults, **parameters(settings), "AWS::StackName": STACK_NAME}
    return {
        str(r["Type"])
        for logical, r in template["Resources"].items()
        if logical not in created and not _skipped_by_condition(r, params)
    }


def _outputs_of(template: dict[str, Any], logical: str, physical: str) -> dict[str, str]:
    return {
        key: physical
        for key, output in template.get("Outputs", {}).items()
        if output["Value"] == {"Ref": logical}
    }


def _ignored_properties(aws: AwsClients, kind: str, props: dict[str, Any], p: Any) -> None:
    if kind == "AWS::DynamoDB::Table":
        table = resolve(props["TableName"], p)
        ttl = props.get("TimeToLiveSpecification")
        current = aws.dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        if ttl and current.get("TimeToLiveStatus") != "ENABLED":
            aws.dynamodb.update_time_to_live(
                TableName=table,
                TimeToLiveSpecification={
                    "AttributeName": resolve(ttl["AttributeName"], p),
                    "Enabled": ttl["Enabled"],
                },
            )
        pitr = props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"]
        aws.dynamodb.update_continuous_backups(
            TableName=table,
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": pitr},
        )
    elif kind == "AWS::S3::Bucket":
        bucket = resolve(props["BucketName"], p)
        rules = [
            {
                "AllowedMethods": rule["AllowedMethods"],
                "AllowedOrigins": _as_list(resolve(rule["AllowedOrigins"], p)),
                "AllowedHeaders": rule["AllowedHeaders"],
                "MaxAgeSeconds": rule["MaxAge"],
            }
            for rule in props["CorsConfiguration"]["CorsRules"]
        ]
        aws.s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": rules})
        aws.s3.put_bucket_lifecycle_configuration(
            Bucket=bucket,
            LifecycleConfiguration={
                "Rules": [
                    _lifecycle_rule(rule, p) for rule in props["LifecycleConfiguration"]["Rules"]
                ]
            },
        )


def _as_list(value: Any) -> list[str]:
    return value.split(",") if isinstance(value, str) else [str(v) for v in value]


def _lifecycle_rule(rule: dict[str, Any], p: Any) -> dict[str, Any]:
    """A CloudFormation lifecycle rule in the S3 API's shape."""
    out: dict[str, Any] = {
        "ID": rule["Id"],
        "Status": rule["Status"],
        "Filter": {"Prefix": str(resolve(rule.get("Prefix", ""), p))},
    }
    if "ExpirationInDays" in rule:
        out["Expiration"] = {"Days": int(resolve(rule["ExpirationInDays"], p))}
    if "ExpiredObjectDeleteMarker" in rule:
        out["Expiration"] = {"ExpiredObjectDeleteMarker": rule["ExpiredObjectDeleteMarker"]}
    if "NoncurrentVersionExpiration" in rule:
        days = rule["NoncurrentVersionExpiration"]["NoncurrentDays"]
        out["NoncurrentVersionExpiration"] = {"NoncurrentDays": days}
    if "AbortIncompleteMultipartUpload" in rule:
        days = rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"]
        out["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": days}
    return out


def _beside(
    aws: AwsClients, settings: Settings, kind: str, props: dict[str, Any], p: dict[str, str]
) -> str | None:
    """Seeds one skipped resource; returns its physical id (what `Ref` would give)."""
    if kind == "AWS::SecretsManager::Secret":
        name = str(resolve(props["Name"], p))
        try:
            aws.secretsmanager.describe_secret(SecretId=name)
        except ClientError:
            aws.secretsmanager.create_secret(
                Name=name, SecretString=secrets.token_urlsafe(32), Description=props["Description"]
            )
        return name
    if kind == "AWS::SES::EmailIdentity":
        for identity in (str(resolve(props["EmailIdentity"], p)), settings.mail_from):
            _exists_ok(lambda i=identity: aws.sesv2.create_email_identity(EmailIdentity=i))
        return str(resolve(props["EmailIdentity"], p))
    if kind == "AWS::SES::ConfigurationSet":
        name = str(resolve(props["Name"], p))
        _exists_ok(lambda: aws.sesv2.create_configuration_set(ConfigurationSetName=name))
        return name
    if kind == "AWS::CloudFront::Distribution":
        return _distribution(aws.cloudfront, settings, p)
    if kind == "AWS::CloudFront::OriginAccessControl":
        return _origin_access_control(aws.cloudfront, props, p)
    return None


def _exists_ok(create: Any) -> None:
    try:
        create()
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in (
            "AlreadyExistsException",
            "ConfigurationSetAlreadyExistsException",
        ):
            raise


def _origin_access_control(cf: Any, props: dict[str, Any], p: dict[str, str]) -> str:
    config = dict(props["OriginAccessControlConfig"])
    config["Name"] = str(resolve(config["Name"], p))
    listed = cf.list_origin_access_controls().get("OriginAccessControlList", {})
    for item in listed.get("Items", []) or []:
        if item["Name"] == config["Name"]:
            return str(item["Id"])
    answer = cf.create_origin_access_control(OriginAccessControlConfig=config)
    return str(answer["OriginAccessControl"]["Id"])


DISTRIBUTION_COMMENT = "charters-local guest pages"


def _distribution(cf: Any, settings: Settings, p: dict[str, str]) -> str:
    """One distribution per stack, in front of the stack's bucket (found again by its
    comment)."""
    bucket = p.get("GuestBucketName") or settings.guest_bucket
    main = p.get("AWS::StackName", STACK_NAME) == STACK_NAME
    comment = DISTRIBUTION_COMMENT if main else f"{DISTRIBUTION_COMMENT} ({bucket})"
    for dist in cf.list_distributions().get("DistributionList", {}).get("Items", []) or []:
        if dist.get("Comment") == comment:
            return str(dist["Id"])
    origin = f"{bucket}.s3.amazonaws.com"
    answer = cf.create_distribution(
        DistributionConfig={
            "CallerReference": "charters-local" if main else f"charters-local-{bucket}",
            "Comment": comment,
            "Enabled": True,
            "Aliases": {"Quantity": 1, "Items": [bucket]},
            "Origins": {
                "Quantity": 1,
                "Items": [
                    {
                        "Id": "guest-bucket",
                        "DomainName": origin,
                        "S3OriginConfig": {"OriginAccessIdentity": ""},
                    }
                ],
            },
            "DefaultCacheBehavior": {
                "TargetOriginId": "guest-bucket",
                "ViewerProtocolPolicy": "redirect-to-https",
                "MinTTL": 0,
                "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
                "TrustedSigners": {"Enabled": False, "Quantity": 0},
            },
        }
    )
    return str(answer["Distribution"]["Id"])
