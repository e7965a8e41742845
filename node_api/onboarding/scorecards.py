"""The packaged scorecard cards the node serves, loaded once per process.

Policies name a card (`german`); stored decisions name its `model_id` (a content
hash), so replay finds exactly the card that scored them.
"""

from __future__ import annotations

import threading

from node_api.kernel.errors import NotFoundError
from node_api.risk.scorecard import Scorecard

PACKAGED_CARDS = ("german", "credit_data")


class ScorecardRegistry:
    """Cards by name and by model id; thread-safe, loaded lazily."""

    def __init__(self) -> None:
        self._by_name: dict[str, Scorecard] = {}
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

    def get_by_model_id(self, model_id: str) -> Scorecard:
        """The card with this model id among the packaged ones."""
        card = self._by_model_id.get(model_id)
        if card is None:
            for name in PACKAGED_CARDS:
                self.get(name)
            card = self._by_model_id.get(model_id)
        if card is None:
            raise NotFoundError("no served scorecard has this model id", field="model_id")
        return card

    def loaded(self) -> list[Scorecard]:
        """Every packaged card, loading those not yet loaded."""
        return [self.get(name) for name in PACKAGED_CARDS]
