"""Fitting the scorecard model: binning, IV selection and logistic regression on WOE.

Needs the `risk` extra (numpy, scikit-learn). Selection keeps characteristics
with information value of at least `iv_min`, drops a characteristic whose WOE is
nearly collinear with a stronger one, and refits until every coefficient has the
sign WOE implies (higher WOE, fewer bads), so every point in the card moves in
the direction its bin's bad rate says.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.linear_model import LogisticRegression

from node_api.risk.binning import BinningSettings, FittedBinning, FloatArray, fit_binning
from node_api.risk.tabular import Column

BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class ModelSettings:
    binning: BinningSettings = field(default_factory=BinningSettings)
    iv_min: float = 0.02
    correlation_max: float = 0.8
    regularization_c: float = 1.0


@dataclass(frozen=True, slots=True)
class FittedScorecard:
    """Selected binnings (in model order), the estimator, and why others were left out."""

    binnings: tuple[FittedBinning, ...]
    estimator: Any
    iv_by_name: Mapping[str, float]
    dropped: Mapping[str, str]

    @property
    def coefficients(self) -> tuple[float, ...]:
        return tuple(float(c) for c in self.estimator.coef_[0])

    @property
    def intercept(self) -> float:
        return float(self.estimator.intercept_[0])

    def woe_matrix(self, columns: Mapping[str, Sequence[float | str | None]]) -> FloatArray:
        return np.column_stack([b.transform(columns[b.name]) for b in self.binnings])

    def log_odds_bad(self, columns: Mapping[str, Sequence[float | str | None]]) -> FloatArray:
        """The fitted model's decision function: ln(P(bad) / P(good)) per row."""
        return np.asarray(self.estimator.decision_function(self.woe_matrix(columns)), np.float64)


def _woe_columns(binnings: Sequence[FittedBinning], columns: Mapping[str, Column]) -> FloatArray:
    return np.column_stack([b.transform(columns[b.name].values) for b in binnings])


def _drop_collinear(
    binnings: list[FittedBinning], woe: FloatArray, correlation_max: float, dropped: dict[str, str]
) -> list[int]:
    kept: list[int] = []
    with np.errstate(invalid="ignore", divide="ignore"):
        correlation = np.nan_to_num(np.corrcoef(woe, rowvar=False).reshape(woe.shape[1], -1))
    for index in range(len(binnings)):
        partner = next((k for k in kept if abs(correlation[index, k]) > correlation_max), None)
        if partner is None:
            kept.append(index)
        else:
            dropped[binnings[index].name] = f"collinear with {binnings[partner].name}"
    return kept


def _fit_signed(
    woe: FloatArray, is_bad: BoolArray, settings: ModelSettings, kept: list[int]
) -> tuple[Any, list[int]]:
    """Refit, dropping the most wrongly signed column, until all coefficients are negative."""
    while True:
        estimator = LogisticRegression(C=settings.regularization_c, max_iter=2000)
        estimator.fit(woe[:, kept], is_bad.astype(np.int64))
        coefficients = estimator.coef_[0]
        if len(kept) == 1 or np.all(coefficients < 0):
            return estimator, kept
        kept = [k for k, c in zip(kept, coefficients, strict=True) if c != coefficients.max()]


def fit_scorecard_model(
    columns: Sequence[Column], is_bad: BoolArray, settings: ModelSettings
) -> FittedScorecard:
    """Bin every column, select characteristics and fit the logistic regression."""
    all_binnings = [fit_binning(column, is_bad, settings.binning) for column in columns]
    iv_by_name = {b.name: b.iv for b in all_binnings}
    dropped = {
        b.name: "information value below minimum" for b in all_binnings if b.iv < settings.iv_min
    }
    candidates = sorted((b for b in all_binnings if b.iv >= settings.iv_min), key=lambda b: -b.iv)
    if not candidates:
        candidates = sorted(all_binnings, key=lambda b: -b.iv)[:1]
        dropped.pop(candidates[0].name, None)
    by_name = {column.name: column for column in columns}
    woe = _woe_columns(candidates, by_name)
    kept = _drop_collinear(candidates, woe, settings.correlation_max, dropped)
    estimator, signed = _fit_signed(woe, is_bad, settings, kept)
    for index in sorted(set(kept) - set(signed)):
        dropped[candidates[index].name] = "coefficient sign contradicts WOE"
    selected = tuple(candidates[index] for index in signed)
    return FittedScorecard(selected, estimator, iv_by_name, dropped)
