"""Seeds moto with what the real AWS account holds: the product's own resources from
infra/charters.yaml (infra_stack.py), then SCC's table and Lambda configuration beside them."""

from __future__ import annotations

import io
import json
import secrets
import zipfile
from typing import Any

from botocore.exceptions import ClientError

from charters.activities.guest_page import publish_not_found_page
from charters.activities.scc_lambda import merge_service_key_hash
from charters.brands import Brand
from charters.settings import Settings
from charters.worker.wiring import AwsClients, aws_client
from charters_dev import infra_stack

# Stack outputs -> the settings they fill (the output descriptions in the template name them).
OUTPUT_SETTINGS = {
    "DistributionId": "distribution_id",
    "LedgerTableName": "ledger_table",
    "GuestBucketName": "guest_bucket",
    "SesConfigurationSet": "ses_configuration_set",
    "BounceQueueUrl": "bounce_queue_url",
    "CrewTableName": "crew_table",
}

QUEEN = "queenofsandiego.com"
SAILJADA_STACK = "charters-brand-sailjada"
SAILJADA_LOOK = {
    "display_name": "Sail JADA",
    "ink": "#1b1f3b",
    "accent": "#8a5a00",
    "background": "#fbfaf7",
    "footer": "Sail JADA · San Diego Bay",
}


def seed_brands(aws: AwsClients, settings: Settings, main: dict[str, str]) -> dict[str, str]:
    """The brief's two brands: `queenofsandiego.com` (the main stack's site, `rewrite`, the
    default) and `sailjada.com` (the older site: a brand-site stack of its own, its own bucket
    and distribution, pages at their plain key). Returns CHARTERS_BRANDS and
    CHARTERS_DEFAULT_BRAND; nothing when the brands are configured already."""
    if settings.brands:
        return {}
    site = infra_stack.deploy(
        aws,
        settings,
        infra_stack.BRAND_TEMPLATE,
        SAILJADA_STACK,
        {
            "BrandName": "sailjada.com",
            "GuestBucketName": "sailjada.com",
            "PathScheme": "plain",
            "KeyPrefix": "charters/",
            "MailDomain": "sailjada.com",
            "ConfigurationSetName": main["SesConfigurationSet"],
            "WorkerRoleName": main["WorkerRoleName"],
            "UploadAllowedOrigins": "*",
        },
    )
    queen = (
        settings.model_copy(
            update={
                "guest_bucket": main["GuestBucketName"],
                "distribution_id": main["DistributionId"],
                "default_brand": settings.default_brand or QUEEN,
            }
        )
        .brand_book()
        .get(None)
    )
    brands = [
        queen.model_dump(mode="json"),
        {
            "name": "sailjada.com",
            "site_url": "https://sailjada.com",
            "bucket": site["GuestBucketName"],
            "key_prefix": "charters/",
            "distribution_id": site["DistributionId"],
            "path_scheme": "plain",
            "sender": "bookings@sailjada.com",
            "reply_to": "crew@sailjada.com",
            "look": SAILJADA_LOOK,
        },
    ]
    jada = Brand.model_validate(brands[1])
    publish_not_found_page(aws.s3, jada.bucket, jada.key_prefix, jada.look)
    return {"CHARTERS_BRANDS": json.dumps(brands), "CHARTERS_DEFAULT_BRAND": queen.name}


def _lambda_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("handler.py", "def handler(event, context):\n    return {'statusCode': 200}\n")
    return buf.getvalue()


def _table(ddb: Any, name: str, key: str) -> None:
    try:
        ddb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceInUseException":
            raise


def _secret(sm: Any, name: str) -> str:
    try:
        return str(sm.get_secret_value(SecretId=name)["SecretString"])
    except ClientError:
        value = secrets.token_urlsafe(32)
        sm.create_secret(Name=name, SecretString=value)
        return value


def set_service_key_hash(aws: AwsClients, settings: Settings, present: bool) -> None:
    """Sets or removes SERVICE_KEY_HASH on the SCC Lambda, keeping every other variable."""
    if present:
        key = _secret(aws.secretsmanager, settings.secret_scc_service_key)
        merge_service_key_hash(aws.lambda_, settings.scc_lambda_function, key)
        return
    config = aws.lambda_.get_function_configuration(FunctionName=settings.scc_lambda_function)
    variables = dict(config.get("Environment", {}).get("Variables", {}))
    variables.pop("SERVICE_KEY_HASH", None)
    aws.lambda_.update_function_configuration(
        FunctionName=settings.scc_lambda_function, Environment={"Variables": variables}
    )


def seed(aws: AwsClients, settings: Settings, with_service_key_hash: bool = True) -> dict[str, str]:
    """Idempotent. Deploys infra/charters.yaml into moto (what the product owns, see
    infra_stack.py), then seeds beside it what belongs to other teams: SCC's table and Lambda.
    Returns the settings the stack's outputs give, as `CHARTERS_*` variables."""
    outputs = infra_stack.deploy(aws, settings)
    # the runbook's `charters ops publish-404`: the distribution's custom error page
    publish_not_found_page(aws.s3, outputs["GuestBucketName"], settings.guest_key_prefix)
    _table(aws.dynamodb, settings.events_table, "event_id")
    iam = aws_client(settings, "iam")
    try:
        role_arn = iam.create_role(
            RoleName="scc-api-role",
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )["Role"]["Arn"]
    except ClientError:
        role_arn = iam.get_role(RoleName="scc-api-role")["Role"]["Arn"]
    try:
        aws.lambda_.create_function(
            FunctionName=settings.scc_lambda_function,
            Runtime="python3.12",
            Role=role_arn,
            Handler="handler.handler",
            Code={"ZipFile": _lambda_zip()},
            Environment={
                "Variables": {
                    "TABLE_NAME": settings.events_table,
                    "STAGE": "prod",
                    "LOG_LEVEL": "info",
                }
            },
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceConflictException":
            raise
    set_service_key_hash(aws, settings, with_service_key_hash)
    found = {
        f"CHARTERS_{setting.upper()}": outputs[key] for key, setting in OUTPUT_SETTINGS.items()
    }
    return {**found, **seed_brands(aws, settings, outputs)}
