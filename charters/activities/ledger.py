"""Effect ledger in DynamoDB: claim a key with a conditional write, do the effect, record it.

Used for the effect whose API has no idempotency token: SES's SendEmail (CloudFront dedups on
its CallerReference and needs none). Once the effect has happened, recording it is retried on
the spot (a throttled or failed write must not make the next attempt repeat the effect). The one
window left is a crash after the effect and before `record`: the next attempt then repeats the
effect. That window is one DynamoDB write wide.

Take-over has a lease: a claim younger than `lease_seconds` belongs to an attempt that may still
be sending, so it is not taken over; the new attempt raises a retryable `EffectInFlight` and
comes back after its retry interval. The lease must outlast the longest time a claimant can
still send. A claimant writes `claimed_at` after its attempt started, and sends only while its
attempt's deadline allows the whole send and one record write (`send_reserve_seconds`, checked
after the claim; a claim that no longer leaves that much is released unsent), so it has
finished sending `start-to-close` after its attempt began at the latest: claim latency and send
are both inside the attempt. Hence `lease = start-to-close + margin` (clock skew between
workers), which wiring sets from the settings. The ledger also checks it itself: a send that
could end later than `claimed_at + lease` (an activity given a longer timeout than the lease was
sized for) is not started.

Every claim carries `expires_at` (epoch seconds; the table's TTL attribute in
infra/charters.yaml), `retention_seconds` after the claim, so DynamoDB removes keys no booking
can still ask about."""

from __future__ import annotations

import logging
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from temporalio.exceptions import ApplicationError

from charters.activities import deadline
from charters.aws_errors import aws_errors

logger = logging.getLogger(__name__)

EFFECT_IN_FLIGHT = "EffectInFlight"
FIXES = {
    "ResourceNotFound": "set CHARTERS_LEDGER_TABLE to the effect ledger's table name (the "
    "template creates it)",
}
DEFAULT_FIX = "check CHARTERS_LEDGER_TABLE and the worker's DynamoDB permissions on it"
RECORD_BACKOFF_SECONDS = (0.05, 0.1, 0.2, 0.4, 0.5, 0.5, 0.5)
TTL_ATTRIBUTE = "expires_at"
RETENTION_SECONDS = 400 * 24 * 3600
"""Longer than any booking lives (booked months ahead, then the trip and its thank-you)."""


class EffectLedger:
    def __init__(
        self,
        dynamodb: Any,
        table: str,
        lease_seconds: float = 60.0,
        *,
        send_reserve_seconds: float = 0.0,
        ttl_attribute: str = TTL_ATTRIBUTE,
        retention_seconds: float = RETENTION_SECONDS,
    ) -> None:
        self._ddb = dynamodb
        self._table = table
        self._lease = lease_seconds
        self._reserve = send_reserve_seconds
        self._ttl_attribute = ttl_attribute
        self._retention = retention_seconds

    @property
    def lease_seconds(self) -> float:
        return self._lease

    def claimed(self, key: str) -> bool:
        """Whether any attempt has claimed `key` (it may have sent, or be sending)."""
        with aws_errors("DynamoDB (effect ledger)", FIXES, DEFAULT_FIX):
            item = self._ddb.get_item(
                TableName=self._table,
                Key={"key": {"S": key}},
                ConsistentRead=True,
                ProjectionExpression="#k",
                ExpressionAttributeNames={"#k": "key"},
            ).get("Item")
        return item is not None

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
        return self._claim(key, kind) is not None

    def _claim(self, key: str, kind: str) -> str | None:
        """`claim`, returning the `claimed_at` written (the claim's identity for `release`)."""
        now = time.time()
        stamp = f"{now:.6f}"
        try:
            self._ddb.put_item(
                TableName=self._table,
                Item={
                    "key": {"S": key},
                    "kind": {"S": kind},
                    "claimed_at": {"N": stamp},
                    "attempts": {"N": "1"},
                    self._ttl_attribute: {"N": str(int(now + self._retention))},
                },
                ConditionExpression="attribute_not_exists(#k)",
                ExpressionAttributeNames={"#k": "key"},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return None
        return stamp

    def take_over(self, key: str) -> bool:
        """Take over the claim of an attempt that died before recording (counted in
        `attempts`, the lease renewed); False when the effect has been recorded meanwhile or the
        claim is younger than the lease (the caller tells the two apart)."""
        return self._take_over(key) is not None

    def _take_over(self, key: str) -> str | None:
        now = time.time()
        stamp = f"{now:.6f}"
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key={"key": {"S": key}},
                UpdateExpression="ADD attempts :one SET claimed_at = :now, #x = :expires",
                ConditionExpression="attribute_not_exists(#r) AND "
                "(attribute_not_exists(claimed_at) OR claimed_at < :expired)",
                ExpressionAttributeNames={"#r": "result", "#x": self._ttl_attribute},
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":now": {"N": stamp},
                    ":expired": {"N": f"{now - self._lease:.6f}"},
                    ":expires": {"N": str(int(now + self._retention))},
                },
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return None
        return stamp

    def release(self, key: str, stamp: str, *, taken_over: bool = False) -> None:
        """Gives back an unrecorded claim this attempt holds (`claimed_at` = `stamp`) without
        sending, so the next attempt need not wait out the lease; a claim taken over or
        recorded meanwhile is left alone. A claim this attempt made is deleted: nothing was
        sent under the key. A claim it took over stays, expired at once: the attempt it took it
        from may have sent (the SES window), which the next attempt and `claimed` (a
        cancellation notice is owed) must still see."""
        mine: dict[str, Any] = {
            "TableName": self._table,
            "Key": {"key": {"S": key}},
            "ConditionExpression": "claimed_at = :mine AND attribute_not_exists(#r)",
            "ExpressionAttributeNames": {"#r": "result"},
            "ExpressionAttributeValues": {":mine": {"N": stamp}},
        }
        try:
            with deadline.finishing():
                if taken_over:
                    mine["ExpressionAttributeValues"][":expired"] = {"N": "0"}
                    self._ddb.update_item(UpdateExpression="SET claimed_at = :expired", **mine)
                else:
                    self._ddb.delete_item(**mine)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

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
        effect's are the caller's to classify.

        The effect starts only while the attempt's deadline leaves `send_reserve_seconds` (the
        send's worst case and one record write): checked before the claim, and again after it,
        when a claim that no longer leaves that much is released unsent."""
        what = f"{kind} {key}"
        deadline.require(self._reserve, what)
        with aws_errors("DynamoDB (effect ledger)", FIXES, DEFAULT_FIX):
            stamp = self._claim(key, kind)
            taken_over = stamp is None
            if stamp is None:
                done = self.recorded(key)
                if done is not None:
                    return done, True
                stamp = self._take_over(key)
                if stamp is None:
                    done = self.recorded(key)
                    if done is None:
                        raise ApplicationError(
                            f"an earlier attempt of {kind} claimed it less than "
                            f"{self._lease:.0f}s ago and may still be sending; retrying after "
                            "the lease",
                            type=EFFECT_IN_FLIGHT,
                        )
                    return done, True
            left = deadline.remaining()
            if left is not None and left < self._reserve:
                self.release(key, stamp, taken_over=taken_over)
                raise deadline.too_near(what, self._reserve, left)
            if self._reserve and time.time() - float(stamp) + self._reserve > self._lease:
                self.release(key, stamp, taken_over=taken_over)
                raise ApplicationError(
                    f"the claim of {what} took so long that the send might outlast its "
                    f"{self._lease:.0f}s lease; released unsent, the next attempt sends",
                    type=EFFECT_IN_FLIGHT,
                )
        try:
            result = str(effect())
        except ClientError as exc:
            if _refused(exc):
                # The service answered and refused: nothing was sent by this attempt, so it
                # claims nothing (a cancellation notice goes only to whom an invitation
                # reached); a claim taken over stays, for what the earlier attempt may have sent.
                with aws_errors("DynamoDB (effect ledger)", FIXES, DEFAULT_FIX):
                    self.release(key, stamp, taken_over=taken_over)
            raise
        with aws_errors("DynamoDB (effect ledger)", FIXES, DEFAULT_FIX):
            self._record_after_effect(key, result)
        return result, False

    def _record_after_effect(self, key: str, result: str) -> None:
        """`record`, tried up to eight times within about 2 s. If it still fails, the effect has
        happened all the same: the result is returned (the workflow keeps it and never asks for
        this key again) and the claim stays unrecorded, rather than failing the attempt and
        having Temporal's retry repeat the effect."""
        for pause in (*RECORD_BACKOFF_SECONDS, None):
            try:
                with deadline.finishing():
                    self.record(key, result)
                return
            except (BotoCoreError, ClientError, ApplicationError) as exc:
                if pause is None:
                    logger.warning(
                        "%s happened but its record failed (%s); kept unrecorded", key, exc
                    )
                    return
                time.sleep(pause)


def _refused(exc: ClientError) -> bool:
    """A 4xx other than a throttle: the request reached the service, which did not act on it. A
    5xx, a throttle or a lost answer may follow an effect that happened, so its claim stays."""
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    code = str(exc.response.get("Error", {}).get("Code", ""))
    return 400 <= status < 500 and "Throttl" not in code and code != "TooManyRequestsException"
