"""CloudFront invalidation of the guest page's paths after each publish."""

from __future__ import annotations

from typing import Any

from temporalio import activity

from charters.activities.ledger import EffectLedger
from charters.aws_errors import aws_errors
from charters.models import InvalidationRef, InvalidationRequest

FIXES = {
    "NoSuchDistribution": "set CHARTERS_DISTRIBUTION_ID to the guest site's distribution id",
    "AccessDenied": "grant the worker's role cloudfront:CreateInvalidation on the distribution "
    "named by CHARTERS_DISTRIBUTION_ID",
}
DEFAULT_FIX = "check CHARTERS_DISTRIBUTION_ID and the worker's CloudFront permissions"


def invalidation_paths(path_prefix: str, key_prefix: str, slug: str) -> list[str]:
    """The viewer URIs and the URI the viewer-request function rewrites them to: CloudFront
    caches under the rewritten URI, and its guide ("What you need to know when invalidating
    paths", on a function that changes the URI) says to invalidate both."""
    return [
        f"{path_prefix}{slug}",
        f"{path_prefix}{slug}/",
        f"/{key_prefix.lstrip('/')}{slug}.html",
    ]


class CloudFrontActivities:
    def __init__(
        self,
        cloudfront: Any,
        ledger: EffectLedger,
        distribution_id: str,
        path_prefix: str,
        key_prefix: str = "guest-pages/",
    ) -> None:
        self._cf = cloudfront
        self._ledger = ledger
        self._distribution = distribution_id
        self._prefix = path_prefix
        self._key_prefix = key_prefix

    @activity.defn(name="invalidate_guest_page")
    def invalidate_guest_page(self, req: InvalidationRequest) -> InvalidationRef:
        """CallerReference is the workflow id plus the content hash (CloudFront dedups on it), and
        the ledger makes it once even where CloudFront's dedup cannot be relied on."""
        paths = invalidation_paths(self._prefix, self._key_prefix, req.slug)
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

        with aws_errors("CloudFront", FIXES, DEFAULT_FIX, subject=self._distribution):
            invalidation_id, _ = self._ledger.once(
                f"cloudfront:{caller_reference}", "cloudfront-invalidation", create
            )
        return InvalidationRef(
            invalidation_id=invalidation_id, paths=paths, caller_reference=caller_reference
        )
