"""A gradient-boosted model inside a card, and serving it in plain Python.

Training (`gbm_fit.py`, with LightGBM) exports its trees into the card's `gbm` section;
serving walks them here without the training library. The model reads features built
from the card's characteristics, the same way in both places:

- `raw`: a numeric characteristic's value (missing: NaN);
- `woe`: a categorical characteristic's weight of evidence from its card bin (so an
  unseen category reads like training's rare or missing bin);
- `ratio`: one numeric characteristic divided by another, or by the product of two others
  (NaN when any is missing or the divisor is zero): what a tree cannot build from splits
  on each alone; the derived ratios of `derived.py` (monthly installment, ...) are ratios
  too;
- `difference`: one numeric characteristic minus another (NaN when either is missing).

Every feature carries the monotonic constraint it was trained under (+1: more of it
never lowers the bad log-odds; -1: never raises them; 0: free), so a risk team can read
the direction of each input as on a scorecard. A linear part's numeric coefficients keep
those directions; a categorical's coefficient on its WOE is free (its categories have no
order), so for a `woe` feature the direction binds the trees only.

Trees are stored flat, as LightGBM builds them: internal node i splits on
`split_feature[i]` at `threshold[i]` (value <= threshold goes left); a child index below
zero is the leaf `~index`. Missing values follow LightGBM's rule: with `missing` = "nan"
they take the default side, otherwise NaN reads as 0.0; with "zero", 0.0 takes the default
side. The raw output is the sum of the leaves reached: the bad log-odds. A model that
averages several boosters (`gbm_fit.py`) stores every booster's trees with their values
divided by the number of boosters, so the same sum serves the average.

A card may also carry a linear part (`linear`): a logistic baseline the trees were boosted
from, served beside them. Its terms read `raw` and `woe` features: a raw value is
standardized as training did (a missing value takes the training median and sets a
missing indicator), z = (value - mean) / scale, and adds coefficient * z (+ the missing
coefficient when missing); a WOE value adds coefficient * WOE. The log-odds is then the
intercept + the terms + the sum of the leaves. A card without `linear` (every card trained
before it existed) has no such key and serves the trees alone, exactly as before.

Reason codes come from per-feature contributions computed while walking (Saabas): each
split moves the prediction from the node's mean output to its child's, and the move is
credited to the split's feature. A tree's root value is the shared baseline, so the
contributions plus the baseline add up to the log-odds exactly. A linear term is its
feature's contribution too, and the linear intercept joins the baseline.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from node_api.risk.derived import compute_derived

ZERO_THRESHOLD = 1e-35
"""LightGBM's `kZeroThreshold`: what counts as zero for `missing` = "zero"."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GbmFeature(_Frozen):
    name: str
    kind: Literal["raw", "woe", "ratio", "difference"]
    characteristics: tuple[str, ...] = Field(min_length=1, max_length=3)
    """The characteristic read (`raw`, `woe`); numerator and divisors (`ratio`); minuend
    and subtrahend (`difference`)."""
    monotone: Literal[-1, 0, 1]
    reason_code: str
    reason_text: str

    @model_validator(mode="after")
    def _check_arity(self) -> GbmFeature:
        count = len(self.characteristics)
        allowed = {"raw": (1,), "woe": (1,), "ratio": (2, 3), "difference": (2,)}[self.kind]
        if count not in allowed:
            raise ValueError(
                "a ratio reads two or three characteristics, a difference two, others one"
            )
        return self


class GbmTree(_Frozen):
    split_feature: tuple[int, ...]
    threshold: tuple[float, ...]
    default_left: tuple[bool, ...]
    missing: tuple[Literal["none", "zero", "nan"], ...]
    left: tuple[int, ...]
    right: tuple[int, ...]
    internal_value: tuple[float, ...]
    leaf_value: tuple[float, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_shape(self) -> GbmTree:
        splits = len(self.split_feature)
        columns = (
            self.threshold,
            self.default_left,
            self.missing,
            self.left,
            self.right,
            self.internal_value,
        )
        if any(len(column) != splits for column in columns):
            raise ValueError("every split column needs one entry per internal node")
        if len(self.leaf_value) != splits + 1:
            raise ValueError("a binary tree has one more leaf than internal nodes")
        for child in (*self.left, *self.right):
            if not -len(self.leaf_value) <= child < splits or child == 0:
                raise ValueError("a child index points outside the tree")
        return self


class GbmLinearTerm(_Frozen):
    """One feature's term of the linear part."""

    feature: int = Field(ge=0)
    """The position of a `raw` or `woe` feature in the section's `features`."""
    coefficient: float
    """Per standardized unit (`raw`: its sign never opposes the feature's monotonic
    constraint) or per unit of WOE (`woe`: free, as a category's one-hot coefficient is)."""
    median: float = 0.0
    """`raw`: the value a missing input takes."""
    mean: float = 0.0
    scale: float = Field(default=1.0, gt=0.0)
    missing_coefficient: float = 0.0
    """`raw`: added when the input is missing."""


class GbmLinear(_Frozen):
    """The logistic baseline the trees were boosted from."""

    intercept: float
    terms: tuple[GbmLinearTerm, ...]


class GbmSection(_Frozen):
    """The boosted trees of a card, its linear part (if any) and the features they read."""

    library: str
    """What trained it (`lightgbm 4.7.0`): serving never imports it."""
    features: tuple[GbmFeature, ...] = Field(min_length=1)
    trees: tuple[GbmTree, ...] = ()
    linear: GbmLinear | None = None
    """Absent from cards trained before it existed (and when not chosen): trees only."""

    @model_validator(mode="after")
    def _check_features(self) -> GbmSection:
        count = len(self.features)
        for tree in self.trees:
            if any(not 0 <= feature < count for feature in tree.split_feature):
                raise ValueError("a tree splits on a feature the section does not list")
        names = [feature.name for feature in self.features]
        if len(set(names)) != len(names):
            raise ValueError("feature names must be distinct")
        if not self.trees and self.linear is None:
            raise ValueError("a gbm section needs trees or a linear part")
        if self.linear is not None:
            read = [term.feature for term in self.linear.terms]
            if len(set(read)) != len(read):
                raise ValueError("a linear term per feature at most")
            for term in self.linear.terms:
                if term.feature >= count or self.features[term.feature].kind not in (
                    "raw",
                    "woe",
                ):
                    raise ValueError("a linear term reads a raw or woe feature of the section")
                feature = self.features[term.feature]
                if feature.kind == "raw" and term.coefficient * feature.monotone < 0:
                    raise ValueError("a linear coefficient opposes its feature's direction")
        return self

    @model_serializer(mode="wrap")
    def _drop_absent_linear(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        """No `linear` key without a linear part: older cards keep their JSON and model_id."""
        document: dict[str, object] = handler(self)
        if self.linear is None:
            document.pop("linear", None)
        return document


@dataclass(frozen=True, slots=True)
class GbmOutput:
    """The bad log-odds, and each feature's share of it above the baseline."""

    log_odds_bad: float
    baseline: float
    contributions: Mapping[str, float]


def compute_features(
    section: GbmSection, numbers: Mapping[str, float | None], woe: Mapping[str, float]
) -> list[float]:
    """Feature values from parsed numeric characteristics and categorical WOE."""
    values: list[float] = []
    for feature in section.features:
        if feature.kind == "woe":
            values.append(woe[feature.characteristics[0]])
            continue
        first = numbers.get(feature.characteristics[0])
        if feature.kind == "raw":
            values.append(math.nan if first is None else first)
            continue
        inputs = tuple(numbers.get(name) for name in feature.characteristics)
        derived = compute_derived(feature.kind, inputs)
        values.append(math.nan if derived is None else derived)
    return values


def _goes_left(tree: GbmTree, node: int, value: float) -> bool:
    missing = tree.missing[node]
    if math.isnan(value):
        if missing == "nan":
            return tree.default_left[node]
        value = 0.0
    if missing == "zero" and -ZERO_THRESHOLD <= value <= ZERO_THRESHOLD:
        return tree.default_left[node]
    return value <= tree.threshold[node]


def walk_tree(tree: GbmTree, values: Sequence[float], credit: list[float]) -> tuple[float, float]:
    """(leaf value, root value); adds each split's move to `credit[feature]`."""
    if not tree.split_feature:
        return tree.leaf_value[0], tree.leaf_value[0]
    node = 0
    current = tree.internal_value[0]
    while True:
        feature = tree.split_feature[node]
        child = tree.left[node] if _goes_left(tree, node, values[feature]) else tree.right[node]
        reached = tree.leaf_value[~child] if child < 0 else tree.internal_value[child]
        credit[feature] += reached - current
        if child < 0:
            return reached, tree.internal_value[0]
        node, current = child, reached


def linear_term(term: GbmLinearTerm, kind: str, value: float) -> float:
    """One linear term's share of the log-odds (training computes it the same way)."""
    if kind == "woe":
        return term.coefficient * value
    if math.isnan(value):
        return term.coefficient * ((term.median - term.mean) / term.scale) + (
            term.missing_coefficient
        )
    return term.coefficient * ((value - term.mean) / term.scale)


def predict(section: GbmSection, values: Sequence[float]) -> GbmOutput:
    """The bad log-odds of one row of feature values, with contributions."""
    credit = [0.0] * len(section.features)
    total = 0.0
    baseline = 0.0
    if section.linear is not None:
        total = baseline = section.linear.intercept
        for term in section.linear.terms:
            kind = section.features[term.feature].kind
            share = linear_term(term, kind, values[term.feature])
            credit[term.feature] += share
            total += share
    for tree in section.trees:
        leaf, root = walk_tree(tree, values, credit)
        total += leaf
        baseline += root
    contributions = {feature.name: credit[index] for index, feature in enumerate(section.features)}
    return GbmOutput(total, baseline, contributions)
