"""Effect ledger in DynamoDB: claim a key with a conditional write, do the effect, record it.

Used for the effect whose API has no idempotency token: SES's SendEmail (CloudFront dedups on
its CallerReference and needs none). Once the effect has happened, recording it is retried on
the spot (a throttled or failed write must not make the next attempt repeat the effect). The one
window left is a crash after the effect and before `record`: the next attempt then repeats the
effect. That window is one DynamoDB write wide.

Take-over has a lease: a claim younger than `lease_seconds` belongs to an attempt that may still
be sending (Temporal's start-to-close timeout ends the attempt for the workflow, not the thread
making the call), so it is not taken over; the new attempt raises a retryable `EffectInFlight`
and comes back after its retry interval. `lease_seconds` must exceed the activity's
start-to-close timeout (wiring sets it), which bounds how long the claimant can still send."""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from temporalio.exceptions import ApplicationError

from charters.aws_errors import aws_errors

EFFECT_IN_FLIGHT = "EffectInFlight"
FIXES = {
    "ResourceNotFound": "set CHARTERS_LEDGER_TABLE to the effect ledger's table name (the "
    "template creates it)",
}
DEFAULT_FIX = "check CHARTERS_LEDGER_TABLE and the worker's DynamoDB permissions on it"
RECORD_BACKOFF_SECONDS = (0.05, 0.1, 0.2, 0.4, 0.5, 0.5, 0.5)


class EffectLedger:
    def __init__(self, dynamodb: Any, table: str, lease_seconds: float = 60.0) -> None:
        self._ddb = dynamodb
        self._table = table
        self._lease = lease_seconds

    def recorded(self, key: str) -> str | None:
        """The result recorded for `key`, or None when the effect has not completed."""
        item = self._ddb.get_item(
            TableName=self._table, Key={"key": {"S": key}}, ConsistentRead=True
        ).get("Item")
        if item and "result" in item:
            return str(item["result"]["S"])
        return None

    def claim(self, key: str, kind: str) -> bool:
        """Claim a new key with a conditional write; False when the key was there already."""
        try:
            self._ddb.put_item(
                TableName=self._table,
                Item={
                    "key": {"S": key},
                    "kind": {"S": kind},
                    "claimed_at": {"N": f"{time.time():.3f}"},
                    "attempts": {"N": "1"},
                },
                ConditionExpression="attribute_not_exists(#k)",
                ExpressionAttributeNames={"#k": "key"},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def take_over(self, key: str) -> bool:
        """Take over the claim of an attempt that died before recording (counted in
        `attempts`, the lease renewed); False when the effect has been recorded meanwhile or the
        claim is younger than the lease (the caller tells the two apart)."""
        now = time.time()
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key={"key": {"S": key}},
                UpdateExpression="ADD attempts :one SET claimed_at = :now",
                ConditionExpression="attribute_not_exists(#r) AND "
                "(attribute_not_exists(claimed_at) OR claimed_at < :expired)",
                ExpressionAttributeNames={"#r": "result"},
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":now": {"N": f"{now:.3f}"},
                    ":expired": {"N": f"{now - self._lease:.3f}"},
                },
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def record(self, key: str, result: str) -> None:
        self._ddb.update_item(
            TableName=self._table,
            Key={"key": {"S": key}},
            UpdateExpression="SET #r = :r, done_at = :t",
            ExpressionAttributeNames={"#r": "result"},
            ExpressionAttributeValues={":r": {"S": result}, ":t": {"N": str(int(time.time()))}},
        )

    def once(self, key: str, kind: str, effect: Any) -> tuple[str, bool]:
        """Run `effect()` once per key (but for the window above); returns (result, duplicate).
        Claim first: a new key, the common case, costs one write before the effect; only a key
        seen before is read. The ledger's own DynamoDB failures are classified here; the
        effect's are the caller's to classify."""
        with aws_errors("DynamoDB (effect ledger)", FIXES, DEFAULT_FIX):
            if not self.claim(key, kind):
                done = self.recorded(key)
                if done is not None:
                    return done, True
                if not self.take_over(key):
                    done = self.recorded(key)
                    if done is None:
                        raise ApplicationError(
                            f"an earlier attempt of {kind} claimed it less than "
                            f"{self._lease:.0f}s ago and may still be sending; retrying after "
                            "the lease",
                            type=EFFECT_IN_FLIGHT,
                        )
                    return done, True
        result = str(effect())
        with aws_errors("DynamoDB (effect ledger)", FIXES, DEFAULT_FIX):
            self._record_after_effect(key, result)
        return result, False

    def _record_after_effect(self, key: str, result: str) -> None:
        """`record`, tried up to eight times within about 2 s: giving up here would
        make Temporal's retry repeat an effect that has already happened."""
        for pause in (*RECORD_BACKOFF_SECONDS, None):
            try:
                self.record(key, result)
                return
            except (BotoCoreError, ClientError):
                if pause is None:
                    raise
                time.sleep(pause)
