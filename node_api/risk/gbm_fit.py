"""Fitting the gradient-boosted model (LightGBM) and exporting its trees to the card.

Needs the `risk` extra (numpy, scikit-learn, lightgbm); serving never imports this
module. Every characteristic is binned as for the scorecard (the bins give categorical
characteristics their WOE, and the card its monitoring and input checks); the features
are described in `gbm_card.py`. Monotonic constraints: a WOE feature is -1 (more WOE,
fewer bads, by construction); a derived ratio (`derived.py`, from the columns' declared
roles) takes its catalog direction, a domain fact; a raw or pairwise ratio feature takes
the sign of its Spearman correlation with the bad flag on the training rows (0 when there
is none), so each input moves the score one way only, as on a scorecard.

The model is an average of boosters (bagging): `bags` boosters, each with its own seed
(so its own row and feature subsamples), read every feature; when `ratios` and
`ratio_mix` are on, `bags` more read every feature but the pairwise ratios. The pairwise
ratios help on some data (credit_data) and add noise on others (German, 1,000 rows);
averaging the two halves keeps most of either gain without choosing per data set, and
averaging seeds lowers the variance of trees fitted on a few hundred bads. The log-odds
is the mean of the boosters' raw scores.

`fit_gbm_model` fits on one set of rows; `export_gbm_section` turns the boosters into the
card's plain trees (every leaf and node value divided by the number of boosters, so the
sum the card serves is their mean), and `check_export` proves the plain-Python walk
reproduces the library's raw predictions on the training rows before a card is written.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import lightgbm
import numpy as np
from scipy.stats import spearmanr

from node_api.kernel.errors import CreditNetError
from node_api.risk.binning import BinningSettings, FittedBinning, FloatArray, fit_binning
from node_api.risk.card_export import get_default_reason_text
from node_api.risk.derived import bind_derived_features, parse_roles
from node_api.risk.gbm_card import (
    GbmFeature,
    GbmSection,
    GbmTree,
    compute_features,
    predict,
)
from node_api.risk.model_fit import BoolArray
from node_api.risk.tabular import Column, ColumnKind

RowColumns = Mapping[str, Sequence[float | str | None]]
EXPORT_TOLERANCE = 1e-9
"""The largest difference allowed between the library's and the plain walk's log-odds."""


@dataclass(frozen=True, slots=True)
class GbmSettings:
    """Boosting settings; the defaults are those the README's figures were measured with."""

    rounds: int = 300
    learning_rate: float = 0.03
    num_leaves: int = 8
    min_child_samples: int = 10
    feature_fraction: float = 0.7
    bagging_fraction: float = 0.8
    lambda_l2: float = 5.0
    ratios: bool = True
    """A ratio feature for every pair of quantities: the numeric characteristics with a
    declared role, or every numeric characteristic when no role is declared."""
    bags: int = 5
    """Boosters averaged per feature set, each with its own seed."""
    ratio_mix: bool = True
    """With `ratios`: also `bags` boosters without the pairwise ratios, in the average."""
    roles: tuple[tuple[str, str], ...] = ()
    """(role, column) pairs: the derived ratios of `derived.py` these roles allow."""
    binning: BinningSettings = field(default_factory=BinningSettings)

    def to_params(self, monotone: Sequence[int], seed: int) -> dict[str, Any]:
        return {
            "objective": "binary",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": 1,
            "lambda_l2": self.lambda_l2,
            "monotone_constraints": list(monotone),
            "seed": seed,
            "deterministic": True,
            "num_threads": 1,
            "verbose": -1,
        }


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    name: str
    kind: str
    characteristics: tuple[str, ...]
    monotone: int | None = None
    """The direction a domain fact fixes (derived ratios); None: from the training rows."""
    reason_text: str | None = None
    pairwise: bool = False
    """A ratio of two quantities built for every pair (not a derived one)."""


def build_feature_specs(
    binnings: Sequence[FittedBinning],
    ratios: bool,
    roles: Sequence[tuple[str, str]] = (),
) -> list[FeatureSpec]:
    """One feature per characteristic, a ratio per pair of quantities (when `ratios`), then
    the derived ratios the declared roles allow.

    Declaring roles says which numeric columns are quantities; the others (codes such as
    a residence-duration class or a count of dependants) are left out of the pairwise
    ratios, whose quotients would mean nothing. Without roles every numeric column counts."""
    numeric_names = {b.name for b in binnings if b.kind == ColumnKind.NUMERIC}
    declared = parse_roles(dict(roles), numeric_names)
    derived = bind_derived_features(declared)
    quantities = set(declared.values()) if declared else numeric_names
    specs = [
        FeatureSpec(b.name, "raw" if b.kind == ColumnKind.NUMERIC else "woe", (b.name,))
        for b in binnings
    ]
    if ratios:
        numeric = [b.name for b in binnings if b.name in quantities]
        specs += [
            FeatureSpec(f"{a}/{b}", "ratio", (a, b), pairwise=True)
            for a, b in itertools.combinations(numeric, 2)
        ]
    specs += [
        FeatureSpec(d.name, d.kind, d.characteristics, d.monotone, d.reason_text) for d in derived
    ]
    return specs


def _numbers(values: Sequence[float | str | None]) -> FloatArray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def build_feature_matrix(
    specs: Sequence[FeatureSpec], binnings: Mapping[str, FittedBinning], columns: RowColumns
) -> FloatArray:
    """Rows x features, exactly as `gbm_card.compute_features` computes one row."""
    matrix = []
    for spec in specs:
        if spec.kind == "woe":
            matrix.append(binnings[spec.name].transform(columns[spec.name]))
        elif spec.kind == "raw":
            matrix.append(_numbers(columns[spec.name]))
        elif spec.kind == "difference":
            first, second = (_numbers(columns[name]) for name in spec.characteristics)
            matrix.append(first - second)
        else:
            numerator = _numbers(columns[spec.characteristics[0]])
            divisor = _numbers(columns[spec.characteristics[1]])
            for name in spec.characteristics[2:]:
                divisor = divisor * _numbers(columns[name])
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(divisor != 0.0, numerator / divisor, np.nan)
            matrix.append(np.where(np.isnan(divisor), np.nan, ratio))
    return np.column_stack(matrix)


def compute_monotone(
    specs: Sequence[FeatureSpec], matrix: FloatArray, is_bad: BoolArray
) -> list[int]:
    """-1 for WOE features, the declared direction of derived ratios; the sign of the
    Spearman correlation with bad otherwise."""
    directions = []
    for index, spec in enumerate(specs):
        if spec.kind == "woe" or spec.monotone is not None:
            directions.append(-1 if spec.monotone is None else spec.monotone)
            continue
        present = ~np.isnan(matrix[:, index])
        values = matrix[present, index]
        if present.sum() < 3 or np.unique(values).size < 2:
            directions.append(0)
            continue
        rho = float(spearmanr(values, is_bad[present].astype(np.float64)).statistic)
        directions.append(0 if not np.isfinite(rho) or rho == 0.0 else (1 if rho > 0 else -1))
    return directions


@dataclass(frozen=True, slots=True)
class FittedBooster:
    """One booster of the average, and the positions (in `FittedGbm.specs`) it reads."""

    booster: Any
    features: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class FittedGbm:
    binnings: tuple[FittedBinning, ...]
    specs: tuple[FeatureSpec, ...]
    monotone: tuple[int, ...]
    boosters: tuple[FittedBooster, ...]

    def raw_score(self, matrix: FloatArray) -> FloatArray:
        """The mean of the boosters' raw scores on a full feature matrix (rows x specs)."""
        scores = [
            np.asarray(b.booster.predict(matrix[:, list(b.features)], raw_score=True))
            for b in self.boosters
        ]
        return np.asarray(np.mean(scores, axis=0), dtype=np.float64)

    def log_odds_bad(self, columns: RowColumns) -> FloatArray:
        matrix = build_feature_matrix(self.specs, {b.name: b for b in self.binnings}, columns)
        return self.raw_score(matrix)


def fit_gbm_model(
    columns: Sequence[Column], is_bad: BoolArray, settings: GbmSettings, seed: int = 0
) -> FittedGbm:
    """Bin every column, build the features and boost monotonic trees on them: `bags`
    boosters on every feature, and (`ratio_mix`) `bags` more without the pairwise ratios;
    booster i uses seed `seed + i`."""
    if settings.bags < 1:
        raise CreditNetError("a gbm needs at least one booster per feature set", field="bags")
    binnings = tuple(fit_binning(column, is_bad, settings.binning) for column in columns)
    specs = tuple(build_feature_specs(binnings, settings.ratios, settings.roles))
    by_name = {b.name: b for b in binnings}
    matrix = build_feature_matrix(specs, by_name, {c.name: c.values for c in columns})
    monotone = tuple(compute_monotone(specs, matrix, is_bad))
    feature_sets = [tuple(range(len(specs)))]
    without = tuple(i for i, spec in enumerate(specs) if not spec.pairwise)
    if settings.ratio_mix and len(without) < len(specs):
        feature_sets.append(without)
    label = is_bad.astype(np.int64)
    boosters: list[FittedBooster] = []
    for features in feature_sets:
        data = lightgbm.Dataset(
            matrix[:, list(features)], label=label, feature_name=[f"f{i}" for i in features]
        )
        params = [monotone[i] for i in features]
        for _ in range(settings.bags):
            options = settings.to_params(params, seed + len(boosters))
            booster = lightgbm.train(options, data, settings.rounds)
            boosters.append(FittedBooster(booster, features))
    return FittedGbm(binnings, specs, monotone, tuple(boosters))


def _flatten(structure: Mapping[str, Any], features: Sequence[int], weight: float) -> GbmTree:
    """LightGBM's nested `tree_structure` as flat columns (internal nodes in preorder);
    a split on the booster's feature j reads `features[j]`, every value is times `weight`."""
    split_feature: list[int] = []
    threshold: list[float] = []
    default_left: list[bool] = []
    missing: list[str] = []
    left: list[int] = []
    right: list[int] = []
    internal_value: list[float] = []
    leaf_value: list[float] = []

    def visit(node: Mapping[str, Any]) -> int:
        if "leaf_value" in node:
            leaf_value.append(float(node["leaf_value"]) * weight)
            return ~(len(leaf_value) - 1)
        if node.get("decision_type") != "<=":
            raise CreditNetError("only numeric splits can be exported", field="model")
        index = len(split_feature)
        split_feature.append(features[int(node["split_feature"])])
        threshold.append(float(node["threshold"]))
        default_left.append(bool(node["default_left"]))
        missing.append(str(node["missing_type"]).lower())
        internal_value.append(float(node["internal_value"]) * weight)
        left.append(0)
        right.append(0)
        left[index] = visit(node["left_child"])
        right[index] = visit(node["right_child"])
        return index

    visit(structure)
    return GbmTree.model_validate(
        {
            "split_feature": split_feature,
            "threshold": threshold,
            "default_left": default_left,
            "missing": missing,
            "left": left,
            "right": right,
            "internal_value": internal_value,
            "leaf_value": leaf_value,
        }
    )


def export_gbm_section(
    model: FittedGbm, reason_texts: Mapping[str, str], reason_codes: Mapping[str, str]
) -> GbmSection:
    """The card's `gbm` section: features (with constraints and reason codes) and trees:
    every booster's, each value divided by the number of boosters."""
    ratio_number = itertools.count(1)
    derived_number = itertools.count(1)
    features = []
    for spec, monotone in zip(model.specs, model.monotone, strict=True):
        if spec.reason_text is not None:
            code = f"RD{next(derived_number):02d}"
            text = spec.reason_text
        elif spec.kind == "ratio":
            code = f"RR{next(ratio_number):02d}"
            texts = [reason_texts.get(n, get_default_reason_text(n)) for n in spec.characteristics]
            text = f"{texts[0]} relative to {texts[1].lower()}"
        else:
            code = reason_codes[spec.name]
            text = reason_texts.get(spec.name, get_default_reason_text(spec.name))
        features.append(
            GbmFeature(
                name=spec.name,
                kind=spec.kind,  # type: ignore[arg-type]
                characteristics=spec.characteristics,
                monotone=monotone,  # type: ignore[arg-type]
                reason_code=code,
                reason_text=text,
            )
        )
    weight = 1.0 / len(model.boosters)
    trees = tuple(
        _flatten(info["tree_structure"], fitted.features, weight)
        for fitted in model.boosters
        for info in fitted.booster.dump_model()["tree_info"]
    )
    return GbmSection(
        library=f"lightgbm {lightgbm.__version__}", features=tuple(features), trees=trees
    )


def check_export(
    section: GbmSection, model: FittedGbm, columns: RowColumns, kinds: Mapping[str, str]
) -> float:
    """The largest gap between the library's and the plain walk's log-odds on `columns`;
    raises if it exceeds `EXPORT_TOLERANCE` (the export would not serve what was fitted)."""
    expected = model.log_odds_bad(columns)
    binnings = {b.name: b for b in model.binnings}
    rows = len(expected)
    gap = 0.0
    for row in range(rows):
        numbers: dict[str, float | None] = {}
        woe: dict[str, float] = {}
        for name, kind in kinds.items():
            value = columns[name][row]
            if kind == "numeric":
                numbers[name] = None if value is None else float(value)
            else:
                woe[name] = float(binnings[name].transform([value])[0])
        served = predict(section, compute_features(section, numbers, woe)).log_odds_bad
        gap = max(gap, abs(served - float(expected[row])))
    if gap > EXPORT_TOLERANCE:
        raise CreditNetError(f"the exported trees differ from the model by {gap:.3g}")
    return gap
