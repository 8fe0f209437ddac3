"""The SCC events table in DynamoDB, written directly for the one thing the SCC API does not
offer: removing revenue from an item crew can see, at any depth of the item (see
`charters.redaction.redact_item_field`)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from charters import errors
from charters.aws_errors import aws_errors
from charters.errors import REDACTION_UNVERIFIED
from charters.models import RedactionRequest, RedactionResult
from charters.redaction import redact_item_field

KEY = "event_id"
FIXES = {
    "ResourceNotFound": "set CHARTERS_EVENTS_TABLE to SCC's events table name",
    "AccessDenied": "grant the worker's role dynamodb:GetItem and UpdateItem on the table named "
    "by CHARTERS_EVENTS_TABLE",
}
DEFAULT_FIX = "check CHARTERS_EVENTS_TABLE and the worker's DynamoDB permissions on it"


def dirty_fields(
    item: dict[str, Any], amounts: list[Any]
) -> dict[str, tuple[dict[str, Any], dict[str, Any] | None]]:
    """Field -> (value seen, clean value or None to remove), for fields holding revenue."""
    out = {}
    for name, value in item.items():
        if name == KEY:
            continue
        clean = redact_item_field(name, value, amounts)
        if clean != value:
            out[name] = (value, clean)
    return out


class SccStoreActivities:
    def __init__(self, dynamodb: Any, table: str) -> None:
        self._ddb = dynamodb
        self._table = table

    def _item(self, event_id: str) -> dict[str, Any]:
        item = self._ddb.get_item(
            TableName=self._table, Key={KEY: {"S": event_id}}, ConsistentRead=True
        ).get("Item")
        if item is None:
            raise errors.needs_operator(
                f"SCC event {event_id} is not in table {self._table}",
                "check CHARTERS_EVENTS_TABLE names SCC's events table, and that the event was "
                "not deleted in SCC; then retry (or skip) the step",
                subject=event_id,
            )
        return dict(item)

    def _rewrite(self, event_id: str, field: str, seen: Any, clean: Any) -> bool:
        """Rewrites (or removes) one field only if it still holds what was read; False when a
        concurrent writer changed it first."""
        update = "SET #f = :clean" if clean is not None else "REMOVE #f"
        values = {":seen": seen, **({":clean": clean} if clean is not None else {})}
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key={KEY: {"S": event_id}},
                UpdateExpression=update,
                ConditionExpression="#f = :seen",
                ExpressionAttributeNames={"#f": field},
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return False
        return True

    @activity.defn(name="redact_scc_revenue")
    def redact_scc_revenue(self, req: RedactionRequest) -> RedactionResult:
        """Each field is rewritten only if it still holds the value we read (conditional), then
        the item is read back: one read when already clean, and it fails unless the result is
        clean. A leftover after a concurrent change retries; one after our own successful
        writes cannot be fixed by a retry and goes to an operator."""
        changed: list[str] = []
        raced = False
        with aws_errors("DynamoDB (SCC events)", FIXES, DEFAULT_FIX, subject=req.event_id):
            dirty = dirty_fields(self._item(req.event_id), req.amounts)
            if not dirty:  # a consistent read found it clean: nothing written, nothing to verify
                return RedactionResult(changed=False, fields=[])
            for field, (seen, clean) in dirty.items():
                if self._rewrite(req.event_id, field, seen, clean):
                    changed.append(field)
                else:
                    raced = True
            leftover = sorted(dirty_fields(self._item(req.event_id), req.amounts))
        if leftover and raced:
            raise ApplicationError(
                f"revenue still present in SCC event fields {leftover} (changed meanwhile)",
                type=REDACTION_UNVERIFIED,
            )
        if leftover:
            raise errors.needs_operator(
                f"revenue still present in SCC event fields {leftover} after redaction",
                "remove the revenue from these fields in SCC by hand, then retry the step",
                subject=req.event_id,
            )
        return RedactionResult(changed=bool(changed), fields=changed)
