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
is the mean of the boosters' raw scores (plus the linear part, when there is one).

Linear part: a logistic regression on the characteristics, as the one-hot benchmark of
`baseline.py` reads them (numeric: standardized, missing = training median plus a missing
indicator; categorical: here its card WOE, since serving knows a categorical input only
by its bin; with two categories that is the same model as one-hot), each numeric
coefficient held to its feature's monotonic direction (L-BFGS-B with bounds; L2 penalty
as the benchmark's C = 1). Boosting from it (LightGBM `init_score`) lets the trees model
what a smooth logistic curve misses instead of approximating that curve in steps.
Whether to start from it, and how many rounds to boost (0 included), is chosen by inner
cross-validation on the rows the model is fitted on (`choose_gbm_recipe`): the candidates
are today's trees from zero (`rounds` rounds) and the linear baseline boosted for each of
`linear_round_counts` rounds; the baseline must win clearly (`linear_margin`).

`fit_gbm_model` fits on one set of rows; `export_gbm_section` turns the boosters into the
card's plain trees (every leaf and node value divided by the number of boosters, so the
sum the card serves is their mean), and `check_export` proves the plain-Python walk
reproduces the library's raw predictions on the training rows before a card is written.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import lightgbm
import numpy as np
from scipy.optimize import minimize
from scipy.special import expit
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from node_api.kernel.errors import CreditNetError
from node_api.risk.baseline import fit_standardization
from node_api.risk.binning import BinningSettings, FittedBinning, FloatArray, fit_binning
from node_api.risk.card_export import get_default_reason_text
from node_api.risk.derived import bind_derived_features, parse_roles
from node_api.risk.gbm_card import (
    GbmFeature,
    GbmLinear,
    GbmLinearTerm,
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
    linear: Literal["auto", "always", "never"] = "auto"
    """"auto": inner cross-validation picks trees from zero or the linear baseline and its
    rounds; "always": the linear baseline, its rounds picked by inner cross-validation;
    "never": trees from zero, `rounds` rounds, no inner cross-validation (the recipe before
    the linear part existed)."""
    linear_rounds: tuple[int, ...] | None = None
    """Rounds to try boosting from the linear baseline; None: 0 and 1/12, 1/6, 1/3, 2/3 and
    all of `rounds` (0, 25, 50, 100, 200, 300)."""
    linear_c: float = 1.0
    """Inverse L2 strength of the linear baseline (the benchmark's C)."""
    inner_folds: int = 5
    linear_margin: float = 1.0
    """The linear baseline replaces trees from zero only when its best candidate's mean
    inner AUC gain exceeds this many standard errors of the paired per-fold gains."""
    inner_bags: int = 1
    """Boosters per feature set in the inner cross-validation (`bags` in the final fit)."""

    @property
    def linear_round_counts(self) -> tuple[int, ...]:
        if self.linear_rounds is not None:
            return tuple(sorted(set(self.linear_rounds)))
        return tuple(sorted({0, *(round(self.rounds * k / 12) for k in (1, 2, 4, 8, 12))}))

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
class FittedLinearTerm:
    feature: int
    """Position in the model's specs (a `raw` or `woe` feature)."""
    kind: str
    coefficient: float
    median: float = 0.0
    mean: float = 0.0
    scale: float = 1.0
    missing_coefficient: float = 0.0

    def share(self, values: FloatArray) -> FloatArray:
        """This term's log-odds per row, computed as `gbm_card.linear_term` serves it."""
        if self.kind == "woe":
            return np.asarray(self.coefficient * values, dtype=np.float64)
        at_median = self.coefficient * ((self.median - self.mean) / self.scale)
        present = self.coefficient * ((values - self.mean) / self.scale)
        return np.where(np.isnan(values), at_median + self.missing_coefficient, present)


@dataclass(frozen=True, slots=True)
class FittedLinear:
    """The logistic baseline: intercept plus one term per raw or WOE feature."""

    intercept: float
    terms: tuple[FittedLinearTerm, ...]

    def log_odds(self, matrix: FloatArray) -> FloatArray:
        total = np.full(matrix.shape[0], self.intercept, dtype=np.float64)
        for term in self.terms:
            total = total + term.share(matrix[:, term.feature])
        return total


def _bound(direction: int) -> tuple[float | None, float | None]:
    return (0.0, None) if direction > 0 else (None, 0.0) if direction < 0 else (None, None)


def fit_linear(
    specs: Sequence[FeatureSpec],
    monotone: Sequence[int],
    matrix: FloatArray,
    is_bad: BoolArray,
    c: float = 1.0,
) -> FittedLinear:
    """Penalized logistic regression (L2, strength 1/c, intercept free) on the standardized
    raw features with missing indicators and on the WOE features; a numeric feature's
    coefficient is held to its monotonic direction. A categorical characteristic's is free,
    as its one-hot coefficients are in the benchmark: its categories have no order, and its
    effect given the others may oppose its marginal one (ISLR's students default more often,
    but less often than non-students with the same balance). A missing indicator's is free."""
    blocks: list[FloatArray] = []
    bounds: list[tuple[float | None, float | None]] = []
    layout: list[tuple[int, str, float, float, float]] = []
    for index, spec in enumerate(specs):
        values = matrix[:, index]
        if spec.kind == "raw":
            missing = np.isnan(values)
            median, mean, scale = fit_standardization(
                [None if absent else float(v) for v, absent in zip(values, missing, strict=True)]
            )
            blocks += [(np.where(missing, median, values) - mean) / scale, missing.astype(float)]
            bounds += [_bound(monotone[index]), (None, None)]
        elif spec.kind == "woe":
            median, mean, scale = 0.0, 0.0, 1.0
            blocks.append(values)
            bounds.append((None, None))
        else:
            continue
        layout.append((index, spec.kind, median, mean, scale))
    design = np.column_stack(blocks) if blocks else np.zeros((matrix.shape[0], 0))
    label = is_bad.astype(np.float64)
    share = float(np.clip(label.mean(), 1e-6, 1.0 - 1e-6))
    start = np.zeros(design.shape[1] + 1)
    start[-1] = np.log(share / (1.0 - share))

    def objective(params: FloatArray) -> tuple[float, FloatArray]:
        weights, intercept = params[:-1], params[-1]
        z = design @ weights + intercept
        loss = float(np.sum(np.logaddexp(0.0, z) - label * z) + 0.5 / c * weights @ weights)
        residual = expit(z) - label
        gradient = np.append(design.T @ residual + weights / c, residual.sum())
        return loss, gradient

    result = minimize(
        objective,
        start,
        jac=True,
        method="L-BFGS-B",
        bounds=[*bounds, (None, None)],
        options={"maxiter": 5000, "ftol": 1e-14, "gtol": 1e-9},
    )
    params = np.asarray(result.x, dtype=np.float64)
    terms = []
    position = 0
    for index, kind, median, mean, scale in layout:
        if kind == "raw":
            coefficient, missing_coefficient = params[position], params[position + 1]
            position += 2
        else:
            coefficient, missing_coefficient = params[position], 0.0
            position += 1
        terms.append(
            FittedLinearTerm(
                index, kind, float(coefficient), median, mean, scale, float(missing_coefficient)
            )
        )
    return FittedLinear(float(params[-1]), tuple(terms))


@dataclass(frozen=True, slots=True)
class FittedBooster:
    """One booster of the average, and the positions (in `FittedGbm.specs`) it reads."""

    booster: Any
    features: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class GbmChoice:
    """What the inner cross-validation chose, and the mean inner AUC of every candidate
    (`trees`: from zero with `rounds` rounds; `linear+N`: the baseline and N rounds)."""

    linear: bool
    rounds: int
    inner_auc: Mapping[str, float]
    inner_auc_by_fold: Mapping[str, tuple[float, ...]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"linear+{self.rounds}" if self.linear else "trees"


@dataclass(frozen=True, slots=True)
class FittedGbm:
    binnings: tuple[FittedBinning, ...]
    specs: tuple[FeatureSpec, ...]
    monotone: tuple[int, ...]
    boosters: tuple[FittedBooster, ...]
    linear: FittedLinear | None = None
    """The baseline the boosters start from (their raw scores are added to it)."""
    choice: GbmChoice | None = None
    """The inner cross-validation's choice (None: fixed by the settings)."""

    def raw_score(self, matrix: FloatArray, rounds: int | None = None) -> FloatArray:
        """The mean of the boosters' raw scores (their first `rounds` trees) on a full
        feature matrix (rows x specs); zero without boosters. Without the linear part."""
        if not self.boosters or rounds == 0:
            return np.zeros(matrix.shape[0], dtype=np.float64)
        scores = [
            np.asarray(
                b.booster.predict(matrix[:, list(b.features)], raw_score=True, num_iteration=rounds)
            )
            for b in self.boosters
        ]
        return np.asarray(np.mean(scores, axis=0), dtype=np.float64)

    def feature_matrix(self, columns: RowColumns) -> FloatArray:
        return build_feature_matrix(self.specs, {b.name: b for b in self.binnings}, columns)

    def log_odds_bad(self, columns: RowColumns, rounds: int | None = None) -> FloatArray:
        """The linear part (if any) plus the mean of the boosters (their first `rounds`)."""
        matrix = self.feature_matrix(columns)
        trees = self.raw_score(matrix, rounds)
        return trees if self.linear is None else self.linear.log_odds(matrix) + trees


def _fit_fixed(
    columns: Sequence[Column],
    is_bad: BoolArray,
    settings: GbmSettings,
    seed: int,
    *,
    linear: bool,
    rounds: int,
    bags: int,
) -> FittedGbm:
    binnings = tuple(fit_binning(column, is_bad, settings.binning) for column in columns)
    specs = tuple(build_feature_specs(binnings, settings.ratios, settings.roles))
    by_name = {b.name: b for b in binnings}
    matrix = build_feature_matrix(specs, by_name, {c.name: c.values for c in columns})
    monotone = tuple(compute_monotone(specs, matrix, is_bad))
    baseline = fit_linear(specs, monotone, matrix, is_bad, settings.linear_c) if linear else None
    init_score = None if baseline is None else baseline.log_odds(matrix)
    feature_sets = [tuple(range(len(specs)))]
    without = tuple(i for i, spec in enumerate(specs) if not spec.pairwise)
    if settings.ratio_mix and len(without) < len(specs):
        feature_sets.append(without)
    label = is_bad.astype(np.int64)
    boosters: list[FittedBooster] = []
    for features in feature_sets if rounds > 0 else []:
        data = lightgbm.Dataset(
            matrix[:, list(features)],
            label=label,
            init_score=init_score,
            feature_name=[f"f{i}" for i in features],
        )
        params = [monotone[i] for i in features]
        for _ in range(bags):
            options = settings.to_params(params, seed + len(boosters))
            booster = lightgbm.train(options, data, rounds)
            boosters.append(FittedBooster(booster, features))
    return FittedGbm(binnings, specs, monotone, tuple(boosters), baseline)


def _subset(columns: Sequence[Column], rows: np.ndarray) -> list[Column]:
    return [Column(c.name, c.kind, tuple(c.values[i] for i in rows)) for c in columns]


def choose_gbm_recipe(
    columns: Sequence[Column], is_bad: BoolArray, settings: GbmSettings, seed: int = 0
) -> GbmChoice:
    """Inner stratified `inner_folds`-fold cross-validation on these rows only: the mean AUC
    of trees from zero (unless `linear` is "always") and of the linear baseline boosted for
    each of `linear_round_counts` rounds (one fit per fold, read at each count), every
    booster average with `inner_bags` seeds. The linear candidate with the best mean AUC
    (a tie: fewer rounds) replaces trees from zero only when its gain over them, paired by
    inner fold, averages more than `linear_margin` standard errors: on a small data set the
    inner folds are noisy and the smaller inner training sets favour the simpler start, so
    today's recipe stays unless the baseline wins clearly (as on ISLR's Default)."""
    counts = settings.linear_round_counts
    if settings.linear == "always" and len(counts) == 1:
        return GbmChoice(True, counts[0], {})
    splitter = StratifiedKFold(n_splits=settings.inner_folds, shuffle=True, random_state=seed)
    from_zero: list[float] = []
    boosted: dict[int, list[float]] = {count: [] for count in counts}
    for train_rows, test_rows in splitter.split(np.zeros(len(is_bad)), is_bad):
        train = _subset(columns, train_rows)
        test = {c.name: c.values for c in _subset(columns, test_rows)}
        label = is_bad[test_rows].astype(np.int64)
        if settings.linear != "always":
            model = _fit_fixed(
                train,
                is_bad[train_rows],
                settings,
                seed,
                linear=False,
                rounds=settings.rounds,
                bags=settings.inner_bags,
            )
            from_zero.append(float(roc_auc_score(label, model.log_odds_bad(test))))
        model = _fit_fixed(
            train,
            is_bad[train_rows],
            settings,
            seed,
            linear=True,
            rounds=max(counts),
            bags=settings.inner_bags,
        )
        matrix = model.feature_matrix(test)
        start = model.linear.log_odds(matrix) if model.linear is not None else 0.0
        for count in counts:
            risk = start + model.raw_score(matrix, count)
            boosted[count].append(float(roc_auc_score(label, risk)))
    by_fold = {f"linear+{count}": tuple(aucs) for count, aucs in boosted.items()}
    if from_zero:
        by_fold["trees"] = tuple(from_zero)
    scores = {label: float(np.mean(aucs)) for label, aucs in by_fold.items()}
    best = max(scores[f"linear+{count}"] for count in counts)
    rounds = next(count for count in counts if scores[f"linear+{count}"] == best)
    if from_zero:
        gains = np.array(by_fold[f"linear+{rounds}"]) - np.array(from_zero)
        error = float(gains.std(ddof=1)) / math.sqrt(len(gains))
        if not float(gains.mean()) > settings.linear_margin * error:
            return GbmChoice(False, settings.rounds, scores, by_fold)
    return GbmChoice(True, rounds, scores, by_fold)


def fit_gbm_model(
    columns: Sequence[Column], is_bad: BoolArray, settings: GbmSettings, seed: int = 0
) -> FittedGbm:
    """Bin every column, build the features and boost monotonic trees on them: `bags`
    boosters on every feature, and (`ratio_mix`) `bags` more without the pairwise ratios;
    booster i uses seed `seed + i`. Whether they start from the linear baseline, and for how
    many rounds, is `choose_gbm_recipe`'s choice on these rows (`linear` = "never": trees
    from zero, `rounds` rounds)."""
    if settings.bags < 1 or settings.inner_bags < 1:
        raise CreditNetError("a gbm needs at least one booster per feature set", field="bags")
    if settings.linear not in ("auto", "always", "never"):
        raise CreditNetError("linear is auto, always or never", field="linear")
    if settings.linear != "never" and (
        settings.inner_folds < 2 or min(settings.linear_round_counts) < 0
    ):
        raise CreditNetError("inner folds >= 2 and rounds >= 0", field="inner_folds")
    if settings.linear == "never":
        return _fit_fixed(
            columns,
            is_bad,
            settings,
            seed,
            linear=False,
            rounds=settings.rounds,
            bags=settings.bags,
        )
    choice = choose_gbm_recipe(columns, is_bad, settings, seed)
    model = _fit_fixed(
        columns,
        is_bad,
        settings,
        seed,
        linear=choice.linear,
        rounds=choice.rounds,
        bags=settings.bags,
    )
    return FittedGbm(
        model.binnings, model.specs, model.monotone, model.boosters, model.linear, choice
    )


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
    weight = 1.0 / len(model.boosters) if model.boosters else 0.0
    trees = tuple(
        _flatten(info["tree_structure"], fitted.features, weight)
        for fitted in model.boosters
        for info in fitted.booster.dump_model()["tree_info"]
    )
    linear = None
    if model.linear is not None:
        terms = tuple(
            GbmLinearTerm(
                feature=term.feature,
                coefficient=term.coefficient,
                median=term.median,
                mean=term.mean,
                scale=term.scale,
                missing_coefficient=term.missing_coefficient,
            )
            for term in model.linear.terms
        )
        linear = GbmLinear(intercept=model.linear.intercept, terms=terms)
    return GbmSection(
        library=f"lightgbm {lightgbm.__version__}",
        features=tuple(features),
        trees=trees,
        linear=linear,
    )


def check_export(
    section: GbmSection, model: FittedGbm, columns: RowColumns, kinds: Mapping[str, str]
) -> float:
    """The largest gap between the library's and the plain walk's log-odds (linear part
    plus trees) on `columns`; raises if it exceeds `EXPORT_TOLERANCE` (the export would not
    serve what was fitted)."""
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
