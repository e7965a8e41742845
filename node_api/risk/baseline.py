"""The plain benchmark every model is compared with: logistic regression on one-hot features.

Categorical characteristics are one-hot encoded (missing is a category of its own),
numeric ones standardized with missing values set to the training median plus a
missing-value indicator. Needs the `risk` extra; only training reports it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.linear_model import LogisticRegression

from node_api.risk.binning import FloatArray
from node_api.risk.evaluation import Predictor, RowColumns
from node_api.risk.model_fit import BoolArray
from node_api.risk.tabular import Column, ColumnKind

_MISSING = "\x00missing"


def fit_standardization(values: Sequence[float | str | None]) -> tuple[float, float, float]:
    """(median, mean, scale) of a numeric column: missing values are filled with the median
    of the present ones (0.0 when none is), then mean and (population) standard deviation of
    the filled values; a constant column gets scale 1.0. Shared with the boosted model's
    linear part (`gbm_fit.py`), which standardizes its numeric inputs the same way."""
    present = [float(v) for v in values if v is not None]
    median = float(np.median(present)) if present else 0.0
    filled = np.array([median if v is None else float(v) for v in values], dtype=np.float64)
    scale = float(filled.std()) or 1.0
    return median, float(filled.mean()), scale


def fit_onehot_logistic(columns: Sequence[Column], is_bad: BoolArray) -> Predictor:
    """Fit the benchmark on the training rows; returns its predictor of held-out rows."""
    numeric: dict[str, tuple[float, float, float]] = {}
    """name -> (median, mean, scale) of the filled training values."""
    categorical: dict[str, dict[str, int]] = {}
    """name -> level -> one-hot position."""
    for column in columns:
        if column.kind == ColumnKind.NUMERIC:
            numeric[column.name] = fit_standardization(column.values)
        else:
            levels = sorted({_MISSING if v is None else str(v) for v in column.values})
            categorical[column.name] = {level: index for index, level in enumerate(levels)}

    def encode(data: RowColumns) -> FloatArray:
        blocks = []
        for column in columns:
            values = data[column.name]
            if column.name in numeric:
                median, mean, scale = numeric[column.name]
                filled = np.array([median if v is None else float(v) for v in values])
                missing = np.array([1.0 if v is None else 0.0 for v in values])
                blocks += [(filled - mean) / scale, missing]
            else:
                encoder = categorical[column.name]
                onehot = np.zeros((len(values), len(encoder)))
                for row, value in enumerate(values):
                    level = encoder.get(_MISSING if value is None else str(value))
                    if level is not None:
                        onehot[row, level] = 1.0
                blocks += list(onehot.T)
        return np.column_stack(blocks)

    estimator = LogisticRegression(C=1.0, max_iter=5000)
    estimator.fit(encode({c.name: c.values for c in columns}), is_bad.astype(np.int64))

    def predictor(data: RowColumns) -> FloatArray:
        return np.asarray(estimator.decision_function(encode(data)), dtype=np.float64)

    return predictor
