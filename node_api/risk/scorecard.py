"""Serving a scorecard card in plain Python (no numpy, pandas or scikit-learn).

`Scorecard.score` maps raw application values to bins exactly as training did
(`values.py` parses both), adds up the points and explains the result: reason
codes are the characteristics that lost the most points against their best bin.

A card with boosted trees (`card.gbm`) bins the inputs the same way (validation,
monitoring and the categorical WOE the trees read), then scores with the trees
(`gbm_card.py`) on the card's scale: score = offset - factor * bad log-odds. Its
reason codes are the features whose contributions pushed the log-odds up the most,
in points.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from node_api.kernel.errors import NotFoundError
from node_api.risk.card import CardCharacteristic, ScorecardCard, load_card, parse_card
from node_api.risk.gbm_card import GbmSection, compute_features, predict
from node_api.risk.values import parse_category, parse_number

REASON_COUNT_MAX = 4
_POINTS_LOST_MIN = 1e-9


@dataclass(frozen=True, slots=True)
class ReasonCode:
    code: str
    characteristic: str
    text: str
    points_lost: float


@dataclass(frozen=True, slots=True)
class ScoreResult:
    """A scored application. `score` is `score_exact` rounded half-even."""

    model_id: str
    score: int
    score_exact: float
    points: Mapping[str, float]
    bin_indices: Mapping[str, int]
    missing: tuple[str, ...]
    reasons: tuple[ReasonCode, ...]
    score_band: int


def get_category_bins(characteristic: CardCharacteristic) -> dict[str, int]:
    """Category label -> bin index of a categorical characteristic."""
    return {
        category: index
        for index, card_bin in enumerate(characteristic.bins)
        for category in card_bin.categories
    }


def assign_bin(
    characteristic: CardCharacteristic,
    raw: object,
    category_bins: Mapping[str, int] | None = None,
) -> int:
    """The bin index of a raw value; missing values go to the missing bin.

    Unseen categories go to `unseen_bin` (the pooled rare categories) or, when
    training had no rare ones, to the missing bin: both mean "no information".
    """
    if characteristic.kind == "numeric":
        number = parse_number(raw, field=characteristic.name)
        if number is None:
            return characteristic.missing_bin
        return bisect.bisect_right(characteristic.edges, number)
    category = parse_category(raw, field=characteristic.name)
    if category is None:
        return characteristic.missing_bin
    lookup = get_category_bins(characteristic) if category_bins is None else category_bins
    unseen = characteristic.unseen_bin
    return lookup.get(category, characteristic.missing_bin if unseen is None else unseen)


class Scorecard:
    """A loaded, verified card and the precomputed best points of each characteristic."""

    def __init__(self, card: ScorecardCard) -> None:
        self.card = card
        self._best_points = {
            c.name: max((b.points for b in c.bins if b.count > 0), default=0.0)
            for c in card.characteristics
        }
        self._category_bins = {c.name: get_category_bins(c) for c in card.characteristics}

    @property
    def model_id(self) -> str:
        return self.card.model_id

    @classmethod
    def from_json(cls, text: str) -> Scorecard:
        return cls(parse_card(text))

    @classmethod
    def load(cls, path: Path) -> Scorecard:
        return cls(load_card(path))

    @classmethod
    def load_packaged(cls, name: str) -> Scorecard:
        """A card shipped in `node_api/risk/cards/` ('german', 'credit_data')."""
        resource = resources.files("node_api.risk").joinpath("cards", f"{name}.json")
        if not name.isidentifier() or not resource.is_file():
            raise NotFoundError("no packaged scorecard card has this name", field="card")
        return cls.from_json(resource.read_text(encoding="utf-8"))

    def score(self, raw_values: Mapping[str, object]) -> ScoreResult:
        """Score one application; absent keys count as missing values."""
        points: dict[str, float] = {}
        bin_indices: dict[str, int] = {}
        missing: list[str] = []
        total = self.card.base_points
        for characteristic in self.card.characteristics:
            name = characteristic.name
            index = assign_bin(characteristic, raw_values.get(name), self._category_bins[name])
            if index == characteristic.missing_bin:
                missing.append(characteristic.name)
            bin_points = characteristic.bins[index].points
            points[characteristic.name] = bin_points
            bin_indices[characteristic.name] = index
            total += bin_points
        reasons = self._reasons(points)
        if self.card.gbm is not None:
            total, reasons = self._score_trees(self.card.gbm, raw_values, bin_indices)
        score = round(total)
        return ScoreResult(
            model_id=self.card.model_id,
            score=score,
            score_exact=total,
            points=points,
            bin_indices=bin_indices,
            missing=tuple(missing),
            reasons=reasons,
            score_band=bisect.bisect_right(self.card.score_bands.edges, score),
        )

    def _score_trees(
        self, gbm: GbmSection, raw_values: Mapping[str, object], bin_indices: Mapping[str, int]
    ) -> tuple[float, tuple[ReasonCode, ...]]:
        numbers: dict[str, float | None] = {}
        woe: dict[str, float] = {}
        for characteristic in self.card.characteristics:
            name = characteristic.name
            if characteristic.kind == "numeric":
                numbers[name] = parse_number(raw_values.get(name), field=name)
            woe[name] = characteristic.bins[bin_indices[name]].woe
        output = predict(gbm, compute_features(gbm, numbers, woe))
        scaling = self.card.scaling
        total = scaling.offset - scaling.factor * output.log_odds_bad
        lost = [
            (scaling.factor * output.contributions[feature.name], position, feature)
            for position, feature in enumerate(gbm.features)
        ]
        ranked = sorted(
            (item for item in lost if item[0] > _POINTS_LOST_MIN), key=lambda i: (-i[0], i[1])
        )
        reasons = tuple(
            ReasonCode(f.reason_code, f.name, f.reason_text, points_lost)
            for points_lost, _, f in ranked[:REASON_COUNT_MAX]
        )
        return total, reasons

    def _reasons(self, points: Mapping[str, float]) -> tuple[ReasonCode, ...]:
        lost = [
            (self._best_points[c.name] - points[c.name], position, c)
            for position, c in enumerate(self.card.characteristics)
        ]
        ranked = sorted(
            (item for item in lost if item[0] > _POINTS_LOST_MIN), key=lambda i: (-i[0], i[1])
        )
        return tuple(
            ReasonCode(c.reason_code, c.name, c.reason_text, points_lost)
            for points_lost, _, c in ranked[:REASON_COUNT_MAX]
        )
