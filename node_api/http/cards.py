"""The scorecards as the API documents them: which characteristics an application should
carry and which values each takes.

The default policy's card is the one most products score with; its characteristics are
written into the application request's schema, and `GET /v1/risk/cards/active` answers
the card a product's current policy uses. A characteristic left out (or null) falls in
its card's missing bin and counts against the policy's `missing_characteristics_max`:
past it the application goes to review (THIN_FILE).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, JsonValue

from node_api.onboarding.policies import DEFAULT_POLICY
from node_api.risk.card import CardCharacteristic
from node_api.risk.scorecard import Scorecard


class CardCharacteristicOut(BaseModel):
    name: str
    kind: Literal["numeric", "categorical"]
    reason_code: str
    description: str
    allowed_values: list[str] = Field(
        description="Every value a categorical characteristic takes (empty when numeric)."
    )
    bins: list[str] = Field(description="The card's bins, by label, the missing bin last.")
    numeric_edges: list[float] = Field(
        description="Bin edges of a numeric characteristic: bins are [lower, upper)."
    )


class ActiveCardOut(BaseModel):
    card: str
    model_id: str
    product_code: str | None = Field(description="The product asked about, if any.")
    policy_version: int | None = Field(
        description="The product's policy version in force (null: the default policy)."
    )
    missing_characteristics_max: int = Field(
        description="More characteristics missing than this sends an application to review."
    )
    characteristics: list[CardCharacteristicOut]


def allowed_values(characteristic: CardCharacteristic) -> list[str]:
    """The categories of a categorical characteristic, in the card's bin order."""
    return [category for item in characteristic.bins for category in item.categories]


def characteristic_view(characteristic: CardCharacteristic) -> CardCharacteristicOut:
    return CardCharacteristicOut(
        name=characteristic.name,
        kind=characteristic.kind,
        reason_code=characteristic.reason_code,
        description=characteristic.reason_text,
        allowed_values=allowed_values(characteristic),
        bins=[item.label for item in characteristic.bins],
        numeric_edges=list(characteristic.edges),
    )


def card_view(
    name: str,
    card: Scorecard,
    *,
    product_code: str | None,
    policy_version: int | None,
    missing_characteristics_max: int,
) -> ActiveCardOut:
    return ActiveCardOut(
        card=name,
        model_id=card.model_id,
        product_code=product_code,
        policy_version=policy_version,
        missing_characteristics_max=missing_characteristics_max,
        characteristics=[characteristic_view(c) for c in card.card.characteristics],
    )


def _property(characteristic: CardCharacteristic) -> dict[str, JsonValue]:
    if characteristic.kind == "categorical":
        values: list[JsonValue] = list(allowed_values(characteristic))
        return {
            "anyOf": [{"type": "string", "enum": values}, {"type": "null"}],
            "description": f"{characteristic.reason_text}: one of the listed values.",
        }
    edges = ", ".join(f"{edge:g}" for edge in characteristic.edges)
    return {
        "anyOf": [{"type": "number"}, {"type": "null"}],
        "description": f"{characteristic.reason_text}: a number (bin edges {edges}).",
    }


def characteristics_schema() -> dict[str, JsonValue]:
    """The JSON schema fragment of an application's `characteristics` under the default
    policy's card: one property per characteristic with its allowed values."""
    card = Scorecard.load_packaged(DEFAULT_POLICY.card)
    names = ", ".join(c.name for c in card.card.characteristics)
    return {
        "description": (
            f"Raw values keyed by the scorecard's characteristic names. The default card "
            f"(`{DEFAULT_POLICY.card}`) reads: {names}. A characteristic left out or null "
            f"falls in the missing bin; more than "
            f"{DEFAULT_POLICY.risk.missing_characteristics_max} missing sends the "
            "application to review (THIN_FILE). A product whose policy names another card "
            "reads that card's names: see `GET /v1/risk/cards/active?product_code=...`."
        ),
        "properties": {c.name: _property(c) for c in card.card.characteristics},
    }
