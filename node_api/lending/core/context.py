"""Per-process caches the lending code shares: ledger account ids and product terms.

Both hold only immutable facts (an account's id, a product version's terms), so they
are safe to share between requests and threads and never need invalidating.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.engine import Connection

from node_api.ledger.accounts import AccountIdCache
from node_api.lending.limits import LimitNode
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
