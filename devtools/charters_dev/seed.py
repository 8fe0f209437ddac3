"""Seeds moto with what the real AWS account holds: bucket, tables, distribution, SES identity,
secrets and the SCC Lambda's configuration."""

from __future__ import annotations

import io
import json
import secrets
import zipfile
from typing import Any

from botocore.exceptions import ClientError

from charters.activities.scc_lambda import merge_service_key_hash
from charters.settings import Settings
from charters.worker.wiring import AwsClients, aws_client

DISTRIBUTION_COMMENT = "charters-local guest pages"


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


def _distribution(cf: Any, settings: Settings) -> str:
    for dist in cf.list_distributions().get("DistributionList", {}).get("Items", []) or []:
        if dist.get("Comment") == DISTRIBUTION_COMMENT:
            return str(dist["Id"])
    origin = f"{settings.guest_bucket}.s3.amazonaws.com"
    answer = cf.create_distribution(
        DistributionConfig={
            "CallerReference": "charters-local",
            "Comment": DISTRIBUTION_COMMENT,
            "Enabled": True,
            "Aliases": {"Quantity": 1, "Items": [settings.guest_bucket]},
            "Origins": {
                "Quantity": 1,
                "Items": [
                    {
                        "Id": "guest-pages",
                        "DomainName": origin,
                        "S3OriginConfig": {"OriginAccessIdentity": ""},
                    }
                ],
            },
            "DefaultCacheBehavior": {
                "TargetOriginId": "guest-pages",
                "ViewerProtocolPolicy": "redirect-to-https",
                "MinTTL": 0,
                "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
                "TrustedSigners": {"Enabled": False, "Quantity": 0},
            },
        }
    )
    return str(answer["Distribution"]["Id"])


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
    """Idempotent. Returns the settings that only exist once seeded (the distribution id)."""
    try:
        aws.s3.create_bucket(
            Bucket=settings.guest_bucket,
            CreateBucketConfiguration={"LocationConstraint": settings.aws_region},
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    aws.s3.put_bucket_cors(
        Bucket=settings.guest_bucket,
        CORSConfiguration={
            "CORSRules": [
                {
                    "AllowedMethods": ["POST", "GET"],
                    "AllowedOrigins": ["*"],
                    "AllowedHeaders": ["*"],
                }
            ]
        },
    )
    _table(aws.dynamodb, settings.events_table, "event_id")
    _table(aws.dynamodb, settings.ledger_table, "key")
    for name in (
        settings.secret_dashboard_token,
        settings.secret_scc_service_key,
        settings.secret_magic_link_key,
    ):
        _secret(aws.secretsmanager, name)
    domain = settings.mail_from.split("@", 1)[1]
    for identity in (domain, settings.mail_from):
        try:
            aws.sesv2.create_email_identity(EmailIdentity=identity)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "AlreadyExistsException":
                raise
    distribution_id = _distribution(aws.cloudfront, settings)

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
    return {"CHARTERS_DISTRIBUTION_ID": distribution_id}
