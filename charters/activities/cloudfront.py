"""CloudFront invalidation of the guest page's paths after each publish."""

from __future__ import annotations

from typing import Any

from temporalio import activity

from charters.activities.ledger import EffectLedger
from charters.models import InvalidationRef, InvalidationRequest


class CloudFrontActivities:
    def __init__(
        self, cloudfront: Any, ledger: EffectLedger, distribution_id: str, path_prefix: str
    ) -> None:
        self._cf = cloudfront
        self._ledger = ledger
        self._distribution = distribution_id
        self._prefix = path_prefix

    @activity.defn(name="invalidate_guest_page")
    def invalidate_guest_page(self, req: InvalidationRequest) -> InvalidationRef:
        """CallerReference is the workflow id plus the content hash (CloudFront dedups on it), and
        the ledger makes it once even where CloudFront's dedup cannot be relied on."""
        paths = [f"{self._prefix}{req.slug}", f"{self._prefix}{req.slug}/"]
        caller_reference = f"{req.idempotency_key}:{req.content_sha256[:32]}"

        def create() -> str:
            answer = self._cf.create_invalidation(
                DistributionId=self._distribution,
                InvalidationBatch={
                    "Paths": {"Quantity": len(paths), "Items": paths},
                    "CallerReference": caller_reference,
                },
            )
            return str(answer["Invalidation"]["Id"])

        invalidation_id, _ = self._ledger.once(
            f"cloudfront:{caller_reference}", "cloudfront-invalidation", create
        )
        return InvalidationRef(
            invalidation_id=invalidation_id, paths=paths, caller_reference=caller_reference
        )
