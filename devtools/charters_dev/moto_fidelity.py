"""Where moto does not do what the AWS documentation says and the product relies on it, the local
stack's moto is made to (each change names its source). Applied by `moto_host` before the
server starts.

- CloudFront `CreateInvalidation`: the API reference (InvalidationBatch, `CallerReference`) says
  a second request with the same CallerReference and the same paths creates nothing and returns
  the invalidation made the first time, and one with other paths fails with
  `InvalidationBatchAlreadyExists`. moto 5 creates a new invalidation on every call. The product
  relies on that documented dedup (it keeps no ledger for invalidations), so the counts the tests
  and `make chaos` take in moto would otherwise show duplicates AWS never makes.
- Lambda: moto's `/moto-api/data.json` (where the stack reads the mail SES has sent) serialises
  every attribute of every model, and without a Docker engine the Lambda model's
  `docker_client` property raises, which turns the whole answer into a 500. Our Lambda is
  configuration only (never invoked), so that property answers None."""

from __future__ import annotations

from typing import Any

from moto.awslambda.models import LambdaFunction
from moto.cloudfront.exceptions import CloudFrontException
from moto.cloudfront.models import CloudFrontBackend, Invalidation


class InvalidationBatchAlreadyExists(CloudFrontException):
    def __init__(self, caller_ref: str) -> None:
        super().__init__(
            "InvalidationBatchAlreadyExists",
            f"CallerReference {caller_ref} was used before with other paths",
        )


def _deduplicating(create: Any) -> Any:
    def create_invalidation(
        self: CloudFrontBackend, dist_id: str, paths: list[str], caller_ref: str
    ) -> Invalidation:
        for earlier in self.invalidations.get(dist_id, []):
            if earlier.caller_ref == caller_ref:
                if sorted(earlier.paths) != sorted(paths):
                    raise InvalidationBatchAlreadyExists(caller_ref)
                return earlier
        return create(self, dist_id, paths, caller_ref)  # type: ignore[no-any-return]

    create_invalidation.deduplicating = True  # type: ignore[attr-defined]
    return create_invalidation


def apply() -> None:
    """Idempotent: the process's moto behaves as documented from here on."""
    LambdaFunction.docker_client = property(lambda self: None)  # type: ignore[assignment,method-assign]
    if not getattr(CloudFrontBackend.create_invalidation, "deduplicating", False):
        CloudFrontBackend.create_invalidation = _deduplicating(  # type: ignore[method-assign]
            CloudFrontBackend.create_invalidation
        )
