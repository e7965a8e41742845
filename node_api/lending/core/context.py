"""Per-process caches the lending code shares: ledger account ids and product terms.

Both hold only immutable facts (an account's id, a product version's terms), so they
are safe to share between requests and threads and never need invalidating.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection

from node_api.ledger.accounts import AccountIdCache
from node_api.lending.core.limits import LimitNode
from node_api.lending.product_versions import ProductTermsCache
from node_api.lending.products import ProductTerms


@dataclass
class LendingCaches:
    accounts: AccountIdCache = field(default_factory=AccountIdCache)
    products: ProductTermsCache = field(default_factory=ProductTermsCache)

    def terms_of(self, conn: Connection, node: LimitNode) -> ProductTerms:
        """The terms a product node is booked on."""
        if node.product_code is None or node.product_version is None:
            raise ValueError(f"{node.path} is not a product node")
        return self.products.get(conn, node.product_code, node.product_version)


def caches_for(state: Any) -> LendingCaches:
    """The process's caches, kept on an app's `state` (created on first use)."""
    caches = getattr(state, "lending_caches", None)
    if not isinstance(caches, LendingCaches):
        caches = LendingCaches()
        state.lending_caches = caches
    return caches
