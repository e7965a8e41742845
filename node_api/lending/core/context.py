"""Per-process caches the lending code shares: ledger account ids and product terms; and
the node's lending policy (cost cap, back-dating window), read once from its settings.

All hold only immutable facts (an account's id, a product version's terms, settings), so
they are safe to share between requests and threads and never need invalidating.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.engine import Connection

from node_api.kernel.config import Settings
from node_api.ledger.accounts import AccountIdCache
from node_api.ledger.business_date import DEFAULT_BACKDATE_WINDOW_DAYS
from node_api.lending.limits import LimitNode
from node_api.lending.product_versions import ProductTermsCache
from node_api.lending.products import ProductTerms
from node_api.lending.products.cost_cap import Annualization, CostCap


@dataclass(frozen=True, slots=True)
class LendingPolicy:
    """The node's settings the lending rules apply; the defaults are `Settings`' own."""

    cost_cap: CostCap = field(default_factory=CostCap)
    backdate_window_days: int = DEFAULT_BACKDATE_WINDOW_DAYS

    @classmethod
    def from_settings(cls, settings: Settings) -> LendingPolicy:
        return cls(
            CostCap(settings.product_cost_cap_bps, Annualization(settings.cost_cap_annualization)),
            settings.backdate_window_days,
        )


@dataclass
class LendingCaches:
    accounts: AccountIdCache = field(default_factory=AccountIdCache)
    products: ProductTermsCache = field(default_factory=ProductTermsCache)
    policy: LendingPolicy = field(default_factory=LendingPolicy)

    def terms_of(self, conn: Connection, node: LimitNode) -> ProductTerms:
        """The terms a product node is booked on."""
        if node.product_code is None or node.product_version is None:
            raise ValueError(f"{node.path} is not a product node")
        return self.products.get(conn, node.product_code, node.product_version)
