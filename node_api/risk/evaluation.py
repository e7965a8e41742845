"""Cross-validated discrimination metrics of the scorecard training recipe.

Each fold refits the whole recipe (binning, selection, regression) on its
training part only, so the held-out rows never influence the bins that score
them: the reported AUC is what a new population would see, not a leak.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.model_selection import StratifiedKFold

from node_api.risk.binning import FloatArray
from node_api.risk.model_fit import BoolArray, ModelSettings, fit_scorecard_model
from node_api.risk.tabular import Column, Dataset


@dataclass(frozen=True, slots=True)
class CrossValidation:
    """Means over folds; gini = 2 * auc - 1."""

    auc: float
    ks: float
    gini: float
    folds: int
    auc_by_fold: tuple[float, ...]


def compute_auc(is_bad: BoolArray, risk: FloatArray) -> float:
    """Area under the ROC curve of `risk` (higher = more likely bad)."""
    return float(roc_auc_score(is_bad.astype(np.int64), risk))


def compute_ks(is_bad: BoolArray, risk: FloatArray) -> float:
    """Kolmogorov-Smirnov statistic: the widest gap between bad and good cumulative shares."""
    false_positive_rate, true_positive_rate, _ = roc_curve(is_bad.astype(np.int64), risk)
    return float(np.max(true_positive_rate - false_positive_rate))


def _subset(columns: Sequence[Column], rows: np.ndarray) -> list[Column]:
    return [Column(c.name, c.kind, tuple(c.values[i] for i in rows)) for c in columns]


RowColumns = Mapping[str, Sequence[float | str | None]]
Predictor = Callable[[RowColumns], FloatArray]
"""Held-out columns by name -> risk per row (higher = more likely bad)."""
Recipe = Callable[[Sequence[Column], BoolArray], Predictor]
"""Fit on the training part of a fold (columns, bad flags) -> its predictor."""


def cross_validate_recipe(
    dataset: Dataset, recipe: Recipe, *, folds: int = 5, seed: int = 0
) -> CrossValidation:
    """Stratified k-fold metrics of any training recipe on `dataset`: the folds are the
    same for every recipe given the same seed, so their figures compare."""
    is_bad = np.array(dataset.is_bad, dtype=np.bool_)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    aucs, kss = [], []
    for train_rows, test_rows in splitter.split(np.zeros(len(is_bad)), is_bad):
        predictor = recipe(_subset(dataset.columns, train_rows), is_bad[train_rows])
        test_columns = {c.name: c.values for c in _subset(dataset.columns, test_rows)}
        risk = predictor(test_columns)
        aucs.append(compute_auc(is_bad[test_rows], risk))
        kss.append(compute_ks(is_bad[test_rows], risk))
    auc = float(np.mean(aucs))
    return CrossValidation(auc, float(np.mean(kss)), 2.0 * auc - 1.0, folds, tuple(aucs))


def cross_validate(
    dataset: Dataset, settings: ModelSettings, *, folds: int = 5, seed: int = 0
) -> CrossValidation:
    """Stratified k-fold metrics of `fit_scorecard_model` on `dataset`."""

    def recipe(columns: Sequence[Column], is_bad: BoolArray) -> Predictor:
        return fit_scorecard_model(columns, is_bad, settings).log_odds_bad

    return cross_validate_recipe(dataset, recipe, folds=folds, seed=seed)
