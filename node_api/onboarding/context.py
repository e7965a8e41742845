"""What the onboarding flow shares across requests of one process (all thread-safe)."""

from __future__ import annotations

from dataclasses import dataclass, field

from node_api.kernel.config import Settings
from node_api.lending.product_versions import ProductTermsCache
from node_api.onboarding.offers import OfferCache
from node_api.onboarding.pii import PiiVault
from node_api.onboarding.policies import PolicyCache
from node_api.onboarding.ring_links import RingLinkFollower
from node_api.onboarding.scorecards import ScorecardRegistry
from node_api.onboarding.vault_factory import build_vault


@dataclass
class OnboardingContext:
    """The vault, the ring index, loaded cards, and caches of product offers."""

    vault: PiiVault
    products: ProductTermsCache = field(default_factory=ProductTermsCache)
    policies: PolicyCache = field(default_factory=PolicyCache)
    cards: ScorecardRegistry = field(default_factory=ScorecardRegistry)
    rings: RingLinkFollower = field(default_factory=RingLinkFollower)
    offers: OfferCache = field(init=False)

    def __post_init__(self) -> None:
        self.offers = OfferCache(self.products, self.policies)

    @classmethod
    def from_settings(cls, settings: Settings) -> OnboardingContext:
        return cls(vault=build_vault(settings))
