"""CloudFront invalidation of the guest page's paths after each publish."""

from __future__ import annotations

from typing import Any

from temporalio import activity

from charters import errors
from charters.activities.guest_page import single_brand
from charters.aws_errors import aws_errors
from charters.brands import Brand, BrandBook, BrandError
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
        distribution_id: str,
        path_prefix: str,
        key_prefix: str = "guest-pages/",
        *,
        brands: BrandBook | None = None,
    ) -> None:
        """`brands`: every configured brand; without it, one `rewrite` brand from the
        arguments."""
        self._cf = cloudfront
        self._brands = brands or single_brand(
            "unused", key_prefix, distribution_id=distribution_id, path_prefix=path_prefix
        )

    def brand(self, name: str | None) -> Brand:
        try:
            return self._brands.get(name)
        except BrandError as exc:
            raise errors.needs_operator(
                str(exc), "add the brand to CHARTERS_BRANDS on every worker", subject=name
            ) from None

    def invalidate(self, brand: Brand, slug: str, caller_reference: str) -> InvalidationRef:
        """One invalidation of the page's paths under `brand`'s scheme, on its distribution."""
        paths = brand.invalidation_paths(slug)
        with aws_errors("CloudFront", FIXES, DEFAULT_FIX, subject=brand.distribution_id):
            answer = self._cf.create_invalidation(
                DistributionId=brand.distribution_id,
                InvalidationBatch={
                    "Paths": {"Quantity": len(paths), "Items": paths},
                    "CallerReference": caller_reference,
                },
            )
        return InvalidationRef(
            invalidation_id=str(answer["Invalidation"]["Id"]),
            paths=paths,
            caller_reference=caller_reference,
        )

    @activity.defn(name="invalidate_guest_page")
    def invalidate_guest_page(self, req: InvalidationRequest) -> InvalidationRef:
        """CallerReference is the workflow id plus the content hash. CloudFront dedups on it (API
        reference, InvalidationBatch): a repeat with the same paths creates nothing and returns
        the first invalidation, so a retry is harmless and no ledger is needed. The paths and the
        distribution are the request's brand's (`Brand.invalidation_paths`). (Other paths
        under the same reference, after the path settings changed between attempts, answer
        InvalidationBatchAlreadyExists: the step blocks for an operator, who may skip it. moto
        ignores the reference; the tests count distinct references.)"""
        caller_reference = f"{req.idempotency_key}:{req.content_sha256[:32]}"
        return self.invalidate(self.brand(req.brand), req.slug, caller_reference)
