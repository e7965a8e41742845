"""A product's offer: its newest registered terms and the onboarding policy in force.

Both change rarely and are read by every application, so each process keeps them
for `OFFER_TTL_S` seconds: a newly registered product version or published policy
reaches every worker within that time (at once in the worker that published it).
Only versions already committed are cached; a default policy stored by the current
transaction is not, since that transaction may still roll back.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from node_api.kernel.errors import CreditNetValueError
from node_api.ledger.schema import product_version_table
from node_api.lending.product_versions import ProductTermsCache
from node_api.lending.products import ProductTerms
from node_api.onboarding.policies import (
    OnboardingPolicy,
    PolicyCache,
    fetch_current_policy,
    fetch_newest_policy,
)

OFFER_TTL_S = 2.0


@dataclass(frozen=True, slots=True)
class Offer:
    terms: ProductTerms
    policy_version: int
    policy: OnboardingPolicy


def fetch_newest_product_version(conn: Connection, product_code: str) -> int:
    """The newest registered version of a product; 422 on `product_code` if there is none."""
    table = product_version_table
    version = conn.execute(
        select(func.max(table.c.version)).where(table.c.product_code == product_code)
    ).scalar_one_or_none()
    if version is None:
        raise CreditNetValueError(
            "no product is registered under this code", field="product_code", code="unknown_product"
        )
    return int(version)


class OfferCache:
    """Offers by product code, each kept for `OFFER_TTL_S` (monotonic clock)."""

    def __init__(self, products: ProductTermsCache, policies: PolicyCache) -> None:
        self._products = products
        self._policies = policies
        self._offers: dict[str, tuple[float, Offer]] = {}
        self._lock = threading.Lock()

    def forget(self, product_code: str) -> None:
        """Drop a product's offer (after publishing its policy in this process)."""
        with self._lock:
            self._offers.pop(product_code, None)

    def fetch(self, conn: Connection, product_code: str) -> Offer:
        """The product's offer; 422 on `product_code` when no version is registered."""
        cached = self._offers.get(product_code)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        newest_version = fetch_newest_product_version(conn, product_code)
        newest = fetch_newest_policy(conn, product_code, self._policies)
        committed = newest is not None
        if newest is None:
            newest = fetch_current_policy(conn, product_code, self._policies)
        policy_version, policy = newest
        version = newest_version if policy.product_version is None else policy.product_version
        offer = Offer(self._products.get(conn, product_code, version), policy_version, policy)
        if committed:
            with self._lock:
                self._offers[product_code] = (time.monotonic() + OFFER_TTL_S, offer)
        return offer
