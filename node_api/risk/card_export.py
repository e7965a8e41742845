"""Turning a fitted scorecard model into its JSON card (points, bins, distributions).

Points use PDO scaling: score = offset + factor * ln(good:bad odds) with
factor = pdo / ln 2 and offset = base_points - factor * ln(base_odds), so the
card gives `base_points` at odds `base_odds`:1 and `pdo` more points each time
the odds double. A bin's points are -factor * coefficient * WOE; the intercept
goes into the card's `base_points`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import JsonValue

from node_api.risk.binning import FittedBinning, FloatArray
from node_api.risk.card import (
    CardBin,
    CardCharacteristic,
    CardMetrics,
    CardScaling,
    CardTarget,
    ScoreBands,
    ScorecardCard,
)
from node_api.risk.evaluation import CrossValidation
from node_api.risk.model_fit import FittedScorecard
from node_api.risk.tabular import ColumnKind, Dataset


@dataclass(frozen=True, slots=True)
class ScalingSettings:
    base_points: float = 600.0
    base_odds: float = 50.0
    pdo: float = 20.0

    def to_card(self) -> CardScaling:
        factor = self.pdo / math.log(2.0)
        offset = self.base_points - factor * math.log(self.base_odds)
        return CardScaling(
            base_points=self.base_points,
            base_odds=self.base_odds,
            pdo=self.pdo,
            factor=factor,
            offset=offset,
        )


def get_default_reason_text(name: str) -> str:
    """'duration_in_month' -> 'Duration in month': a readable default, editable before export."""
    words = name.replace("_", " ").replace("-", " ").split()
    text = " ".join(words) if words else name
    return text[:1].upper() + text[1:]


def _range_label(lower: float | None, upper: float | None) -> str:
    if lower is None:
        return f"< {upper:g}"
    if upper is None:
        return f">= {lower:g}"
    return f"[{lower:g}, {upper:g})"


def _bins(binning: FittedBinning, points: Sequence[float], rows_total: int) -> list[CardBin]:
    bins = []
    for index, (woe, goods, bads) in enumerate(
        zip(binning.woe, binning.goods, binning.bads, strict=True)
    ):
        count = goods + bads
        lower: float | None = None
        upper: float | None = None
        categories: Sequence[str] = ()
        if index == binning.missing_bin:
            label = "missing"
        elif binning.kind == ColumnKind.NUMERIC:
            lower = binning.edges[index - 1] if index > 0 else None
            upper = binning.edges[index] if index < len(binning.edges) else None
            label = _range_label(lower, upper)
        else:
            categories = binning.groups[index]
            label = ", ".join(categories)
        card_bin = CardBin(
            label=label,
            lower=lower,
            upper=upper,
            categories=tuple(categories),
            is_missing=index == binning.missing_bin,
            woe=woe,
            points=points[index],
            count=count,
            share=count / rows_total,
            bad_rate=bads / count if count else None,
        )
        bins.append(card_bin)
    return bins


def _characteristic(
    binning: FittedBinning,
    coefficient: float,
    position: int,
    scaling: CardScaling,
    rows_total: int,
    reason_texts: Mapping[str, str],
) -> CardCharacteristic:
    points = [-scaling.factor * coefficient * woe for woe in binning.woe]
    return CardCharacteristic(
        name=binning.name,
        kind="numeric" if binning.kind == ColumnKind.NUMERIC else "categorical",
        reason_code=f"RC{position + 1:02d}",
        reason_text=reason_texts.get(binning.name, get_default_reason_text(binning.name)),
        coefficient=coefficient,
        iv=binning.iv,
        edges=binning.edges,
        bins=tuple(_bins(binning, points, rows_total)),
        unseen_bin=binning.unseen_bin,
    )


def build_characteristics(
    binnings: Sequence[FittedBinning],
    coefficients: Sequence[float],
    scaling: CardScaling,
    rows_total: int,
    reason_texts: Mapping[str, str] | None = None,
) -> tuple[CardCharacteristic, ...]:
    """The card's characteristics, in model order (reason codes RC01, RC02, ...)."""
    texts = reason_texts or {}
    return tuple(
        _characteristic(binning, coefficient, position, scaling, rows_total, texts)
        for position, (binning, coefficient) in enumerate(zip(binnings, coefficients, strict=True))
    )


def compute_score_bands(scores: FloatArray, band_count: int) -> ScoreBands:
    """Quantile bands of the integer training scores, with the share of rows in each."""
    integer_scores = np.array([round(float(score)) for score in scores], dtype=np.int64)
    quantiles = np.quantile(
        integer_scores, np.linspace(0, 1, band_count + 1)[1:-1], method="higher"
    )
    edges = sorted({int(q) for q in quantiles if q > integer_scores.min()})
    band_indices = np.searchsorted(np.array(edges, dtype=np.int64), integer_scores, side="right")
    counts = np.bincount(band_indices, minlength=len(edges) + 1)
    return ScoreBands(edges=tuple(edges), shares=tuple(float(c) / len(scores) for c in counts))


def build_card(
    model: FittedScorecard,
    dataset: Dataset,
    validation: CrossValidation,
    scaling_settings: ScalingSettings,
    *,
    band_count: int = 10,
    reason_texts: Mapping[str, str] | None = None,
    training_notes: Mapping[str, JsonValue] | None = None,
) -> ScorecardCard:
    """The complete card for `model` trained on `dataset`, with its `model_id` set."""
    scaling = scaling_settings.to_card()
    characteristics = build_characteristics(
        model.binnings, model.coefficients, scaling, dataset.n_rows, reason_texts
    )
    columns = {column.name: column.values for column in dataset.columns}
    scores = scaling.offset - scaling.factor * model.log_odds_bad(columns)
    bad_rate = sum(dataset.is_bad) / dataset.n_rows
    metrics = CardMetrics(
        auc=validation.auc,
        ks=validation.ks,
        gini=validation.gini,
        n_rows=dataset.n_rows,
        bad_rate=bad_rate,
        folds=validation.folds,
        auc_by_fold=validation.auc_by_fold,
    )
    training: dict[str, JsonValue] = {
        "information_values": dict(sorted(model.iv_by_name.items())),
        "dropped": dict(sorted(model.dropped.items())),
        "rows_dropped_without_target": dataset.rows_dropped,
        **(training_notes or {}),
    }
    card = ScorecardCard(
        model_id="",
        target=CardTarget(column=dataset.target, bad_value=dataset.bad_value),
        scaling=scaling,
        intercept=model.intercept,
        base_points=scaling.offset - scaling.factor * model.intercept,
        characteristics=characteristics,
        score_bands=compute_score_bands(scores, band_count),
        metrics=metrics,
        training=training,
    )
    return card.with_model_id()
