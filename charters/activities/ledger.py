"""Effect ledger in DynamoDB: claim a key with a conditional write, do the effect, record it.

Used for effects whose API has no idempotency token (SES) or whose token we cannot rely on
(CloudFront locally). Once the effect has happened, recording it is retried on the spot (a
throttled or failed write must not make the next attempt repeat the effect). The one window left
is a crash after the effect and before `record`: the next attempt then repeats the effect. That
window is one DynamoDB write wide."""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

RECORD_BACKOFF_SECONDS = (0.05, 0.1, 0.2, 0.4, 0.5, 0.5, 0.5)


class EffectLedger:
    def __init__(self, dynamodb: Any, table: str) -> None:
        self._ddb = dynamodb
        self._table = table

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
                    "claimed_at": {"N": str(int(time.time()))},
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
        `attempts`); False when the effect has been recorded meanwhile."""
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key={"key": {"S": key}},
                UpdateExpression="ADD attempts :one",
                ConditionExpression="attribute_not_exists(#r)",
                ExpressionAttributeNames={"#r": "result"},
                ExpressionAttributeValues={":one": {"N": "1"}},
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
        seen before is read."""
        if not self.claim(key, kind):
            done = self.recorded(key)
            if done is not None:
                return done, True
            if not self.take_over(key):
                return self.recorded(key) or "", True
        result = str(effect())
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
