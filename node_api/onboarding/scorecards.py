"""The scorecards the node serves: the packaged cards and the registered models.

Policies name a packaged card (`german`) or a registered model version; stored
decisions name the card's `model_id` (a content hash), so replay finds exactly the card
that scored them. Both kinds are loaded once per process: packaged cards ship with the
code and registered ones never change once registered.
"""

from __future__ import annotations

import threading

from sqlalchemy.engine import Connection

from node_api.kernel.errors import NotFoundError
from node_api.onboarding.policies import OnboardingPolicy
from node_api.risk.model_registry import fetch_model_card, fetch_model_version_of
from node_api.risk.scorecard import Scorecard

PACKAGED_CARDS = ("german", "credit_data")


class ScorecardRegistry:
    """Cards by packaged name, registered version and model id; thread-safe, lazy."""

    def __init__(self) -> None:
        self._by_name: dict[str, Scorecard] = {}
        self._by_version: dict[int, Scorecard] = {}
        self._by_model_id: dict[str, Scorecard] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Scorecard:
        """The card packaged under `name`; NotFoundError(field="card") if there is none."""
        card = self._by_name.get(name)
        if card is None:
            loaded = Scorecard.load_packaged(name)
            with self._lock:
                card = self._by_name.setdefault(name, loaded)
                self._by_model_id.setdefault(card.model_id, card)
        return card

    def get_registered(self, conn: Connection, version: int) -> Scorecard:
        """The registered model `version`; NotFoundError(field="model_version") if none."""
        card = self._by_version.get(version)
        if card is None:
            loaded = Scorecard(fetch_model_card(conn, version))
            with self._lock:
                card = self._by_version.setdefault(version, loaded)
                self._by_model_id.setdefault(card.model_id, card)
        return card

    def get_for_policy(self, conn: Connection, policy: OnboardingPolicy) -> Scorecard:
        """The card a policy scores with: its registered model, else its packaged card."""
        if policy.model_version is not None:
            return self.get_registered(conn, policy.model_version)
        return self.get(policy.card)

    def get_by_model_id(self, model_id: str, conn: Connection | None = None) -> Scorecard:
        """The card with this model id: a packaged one, or (given `conn`) a registered one."""
        card = self._by_model_id.get(model_id)
        if card is None:
            for name in PACKAGED_CARDS:
                self.get(name)
            card = self._by_model_id.get(model_id)
        if card is None and conn is not None:
            version = fetch_model_version_of(conn, model_id)
            if version is not None:
                card = self.get_registered(conn, version)
        if card is None:
            raise NotFoundError("no served scorecard has this model id", field="model_id")
        return card

    def loaded(self) -> list[Scorecard]:
        """Every packaged card, loading those not yet loaded."""
        return [self.get(name) for name in PACKAGED_CARDS]
