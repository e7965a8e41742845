"""The scorecard card: the JSON document that carries a trained model to serving.

A card is self-describing and content-addressed: `model_id` is the SHA-256 of the
canonical JSON of everything else, so a stored decision names exactly the card
that scored it and an edited card cannot pass for the original. Points are kept
at full float precision (JSON round-trips Python floats exactly); the served
score is their sum rounded half-even to an integer.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

from node_api.kernel.errors import ConfigurationError
from node_api.risk.gbm_card import GbmSection

DATA_FINGERPRINT_KEY = "data_sha256"
"""Where training records the SHA-256 of its data file in a card's `training` notes."""


def compute_data_fingerprint(data: bytes) -> str:
    """`sha256:<hex>` of a training data file's bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CardBin(_Frozen):
    """One bin: a numeric range [lower, upper), a set of categories, or the missing bin."""

    label: str
    lower: float | None = None
    upper: float | None = None
    categories: tuple[str, ...] = ()
    is_missing: bool = False
    woe: float
    points: float
    count: int = Field(ge=0)
    share: float = Field(ge=0.0, le=1.0)
    bad_rate: float | None = None


class CardCharacteristic(_Frozen):
    name: str
    kind: Literal["numeric", "categorical"]
    reason_code: str
    reason_text: str
    coefficient: float
    iv: float
    edges: tuple[float, ...] = ()
    bins: tuple[CardBin, ...]
    unseen_bin: int | None = None

    @model_validator(mode="after")
    def _check_layout(self) -> CardCharacteristic:
        if not self.bins or not self.bins[-1].is_missing:
            raise ValueError("the last bin of a characteristic must be the missing bin")
        if self.kind == "numeric" and len(self.bins) != len(self.edges) + 2:
            raise ValueError("a numeric characteristic needs len(edges) + 2 bins")
        if list(self.edges) != sorted(set(self.edges)):
            raise ValueError("edges must be strictly increasing")
        if self.unseen_bin is not None and not 0 <= self.unseen_bin < len(self.bins):
            raise ValueError("unseen_bin is out of range")
        return self

    @property
    def missing_bin(self) -> int:
        return len(self.bins) - 1


class CardScaling(_Frozen):
    """score = offset + factor * ln(good:bad odds); factor = pdo / ln 2."""

    base_points: float
    base_odds: float
    pdo: float
    factor: float
    offset: float


class CardTarget(_Frozen):
    column: str
    bad_value: str


class CardMetrics(_Frozen):
    """Cross-validated metrics (means over folds) and the data they came from."""

    auc: float
    ks: float
    gini: float
    n_rows: int
    bad_rate: float
    folds: int
    auc_by_fold: tuple[float, ...]


class ScoreBands(_Frozen):
    """Training score distribution: bands [edges[i-1], edges[i]) and their row shares."""

    edges: tuple[int, ...]
    shares: tuple[float, ...]


class ScorecardCard(_Frozen):
    format: Literal["creditnet.scorecard"] = "creditnet.scorecard"
    version: Literal[1] = 1
    model_id: str
    target: CardTarget
    scaling: CardScaling
    intercept: float
    base_points: float
    characteristics: tuple[CardCharacteristic, ...]
    score_bands: ScoreBands
    metrics: CardMetrics
    training: dict[str, JsonValue]
    gbm: GbmSection | None = None
    """Boosted trees that score instead of the points (`risk train --model gbm`); the
    characteristics then only read and bin the inputs (validation, WOE, monitoring)."""

    def to_document(self, *, with_model_id: bool = True) -> dict[str, JsonValue]:
        """The card's JSON object; a scorecard without trees has no `gbm` key, so its
        JSON and `model_id` read as they did before trees existed."""
        exclude = set() if with_model_id else {"model_id"}
        if self.gbm is None:
            exclude.add("gbm")
        document: dict[str, JsonValue] = self.model_dump(mode="json", exclude=exclude)
        return document

    @property
    def is_gbm(self) -> bool:
        return self.gbm is not None

    def compute_model_id(self) -> str:
        """SHA-256 over the canonical JSON of the card without its `model_id`."""
        content = self.to_document(with_model_id=False)
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def with_model_id(self) -> ScorecardCard:
        return self.model_copy(update={"model_id": self.compute_model_id()})

    def to_json(self) -> str:
        return json.dumps(self.to_document(), indent=1, ensure_ascii=False) + "\n"


def parse_card(text: str) -> ScorecardCard:
    """Parse and verify a card; a `model_id` that does not match the content is refused."""
    try:
        card = ScorecardCard.model_validate(json.loads(text))
    except ValueError as error:
        raise ConfigurationError(f"scorecard card is malformed: {error}") from None
    if card.model_id != card.compute_model_id():
        raise ConfigurationError("scorecard card model_id does not match its content")
    return card


def load_card(path: Path) -> ScorecardCard:
    return parse_card(path.read_text(encoding="utf-8"))
