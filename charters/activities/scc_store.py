"""The SCC events table in DynamoDB, written directly for the one thing the SCC API does not
offer: removing revenue from an item crew can see."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from charters.errors import REDACTION_UNVERIFIED
from charters.models import RedactionRequest, RedactionResult
from charters.redaction import redact


def _strings(item: dict[str, Any]) -> dict[str, str]:
    return {k: v["S"] for k, v in item.items() if "S" in v and k != "event_id"}


class SccStoreActivities:
    def __init__(self, dynamodb: Any, table: str) -> None:
        self._ddb = dynamodb
        self._table = table

    def _item(self, event_id: str) -> dict[str, Any]:
        item = self._ddb.get_item(
            TableName=self._table, Key={"event_id": {"S": event_id}}, ConsistentRead=True
        ).get("Item")
        if item is None:
            raise ApplicationError(f"SCC event {event_id} is not in {self._table}")
        return dict(item)

    @activity.defn(name="redact_scc_revenue")
    def redact_scc_revenue(self, req: RedactionRequest) -> RedactionResult:
        """Each field is rewritten only if it still holds the text we read (conditional), then the
        item is read back: a no-op when already clean, and it fails unless the result is clean."""
        changed: list[str] = []
        for field, text in _strings(self._item(req.event_id)).items():
            clean = redact(text, req.amounts)
            if clean == text:
                continue
            try:
                self._ddb.update_item(
                    TableName=self._table,
                    Key={"event_id": {"S": req.event_id}},
                    UpdateExpression="SET #f = :clean",
                    ConditionExpression="#f = :seen",
                    ExpressionAttributeNames={"#f": field},
                    ExpressionAttributeValues={":clean": {"S": clean}, ":seen": {"S": text}},
                )
                changed.append(field)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
        leftover = [
            f for f, t in _strings(self._item(req.event_id)).items() if redact(t, req.amounts) != t
        ]
        if leftover:
            raise ApplicationError(
                f"revenue still present in SCC event fields {leftover}", type=REDACTION_UNVERIFIED
            )
        return RedactionResult(changed=bool(changed), fields=changed)
