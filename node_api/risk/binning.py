"""WOE binning for scorecard training (numpy; training extra only, never served).

Numeric characteristics: quantile pre-bins, then adjacent bins merged until every
bin holds a minimum share of rows, the weight of evidence is strictly monotonic
(the direction with the higher information value wins) and at most `bins_max`
bins remain. Categorical characteristics: one bin per category, rare categories
pooled, then groups (ordered by WOE) merged under the same share and count rules.
Missing values always get their own bin, the last one.

WOE is ln(share of goods / share of bads) with `smoothing` pseudo-rows spread at
the population bad rate, so an empty or tiny bin gets a WOE near 0 (neutral)
instead of infinity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from node_api.risk.tabular import Column, ColumnKind

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class BinningSettings:
    prebins: int = 20
    bin_share_min: float = 0.05
    bins_max: int = 8
    rare_share: float = 0.02
    smoothing: float = 2.0


@dataclass(frozen=True, slots=True)
class FittedBinning:
    """The bins of one characteristic; the missing bin is always the last one."""

    name: str
    kind: ColumnKind
    edges: tuple[float, ...]
    groups: tuple[tuple[str, ...], ...]
    unseen_bin: int | None
    goods: tuple[int, ...]
    bads: tuple[int, ...]
    woe: tuple[float, ...]
    iv: float

    @property
    def missing_bin(self) -> int:
        return len(self.woe) - 1

    def assign(self, values: Sequence[float | str | None]) -> IntArray:
        """Bin index of every value (same rules as the plain-Python serving code)."""
        if self.kind == ColumnKind.NUMERIC:
            numbers = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
            indices = np.searchsorted(np.array(self.edges), numbers, side="right")
            return np.where(np.isnan(numbers), self.missing_bin, indices).astype(np.int64)
        lookup = {category: index for index, group in enumerate(self.groups) for category in group}
        unseen = self.missing_bin if self.unseen_bin is None else self.unseen_bin
        return np.array(
            [self.missing_bin if v is None else lookup.get(str(v), unseen) for v in values],
            dtype=np.int64,
        )

    def transform(self, values: Sequence[float | str | None]) -> FloatArray:
        """WOE of every value."""
        return np.asarray(self.woe, dtype=np.float64)[self.assign(values)]


def compute_woe(goods: IntArray, bads: IntArray, smoothing: float) -> FloatArray:
    """Smoothed WOE per bin; the totals are the sums of `goods` and `bads`."""
    goods_total, bads_total = float(goods.sum()), float(bads.sum())
    rows_total = goods_total + bads_total
    smoothed_goods = goods + smoothing * goods_total / rows_total
    smoothed_bads = bads + smoothing * bads_total / rows_total
    woe: FloatArray = np.log(smoothed_goods / goods_total) - np.log(smoothed_bads / bads_total)
    return woe


def compute_iv(goods: IntArray, bads: IntArray, woe: FloatArray) -> float:
    """Information value: sum of (good share - bad share) * WOE."""
    return float(np.sum((goods / goods.sum() - bads / bads.sum()) * woe))


class _Bins:
    """Mutable adjacent bins during merging: per-bin counts and the edges between them."""

    def __init__(self, goods: IntArray, bads: IntArray, labels: list[list[float | str]]) -> None:
        self.goods, self.bads, self.labels = list(goods), list(bads), labels

    def __len__(self) -> int:
        return len(self.goods)

    def merge(self, index: int) -> None:
        """Merge bin `index` with bin `index + 1` (labels are the edges or categories)."""
        self.goods[index] += self.goods.pop(index + 1)
        self.bads[index] += self.bads.pop(index + 1)
        self.labels[index] += self.labels.pop(index + 1)

    def woe(self, extra_goods: int, extra_bads: int, smoothing: float) -> FloatArray:
        """WOE of these bins, with the missing bin's counts included in the totals."""
        goods = np.array([*self.goods, extra_goods], dtype=np.int64)
        bads = np.array([*self.bads, extra_bads], dtype=np.int64)
        return compute_woe(goods, bads, smoothing)[:-1]


def _closest_neighbour_pair(woe: FloatArray, index: int) -> int:
    """Left index of the pair to merge bin `index` into: the neighbour with nearer WOE."""
    if index == 0:
        return 0
    if index == len(woe) - 1:
        return index - 1
    left_gap, right_gap = abs(woe[index] - woe[index - 1]), abs(woe[index + 1] - woe[index])
    return index - 1 if left_gap <= right_gap else index


def _merge_small_bins(bins: _Bins, missing: tuple[int, int], settings: BinningSettings) -> None:
    rows_total = sum(bins.goods) + sum(bins.bads) + missing[0] + missing[1]
    while len(bins) > 1:
        counts = np.array(bins.goods) + np.array(bins.bads)
        smallest = int(np.argmin(counts))
        if counts[smallest] >= settings.bin_share_min * rows_total:
            return
        bins.merge(_closest_neighbour_pair(bins.woe(*missing, settings.smoothing), smallest))


def _merge_until_monotonic(
    bins: _Bins, missing: tuple[int, int], sign: int, smoothing: float
) -> None:
    while len(bins) > 1:
        steps = np.diff(bins.woe(*missing, smoothing)) * sign
        violations = np.flatnonzero(steps <= 0)
        if violations.size == 0:
            return
        bins.merge(int(violations[np.argmin(np.abs(steps[violations]))]))


def _merge_to_max_bins(bins: _Bins, missing: tuple[int, int], settings: BinningSettings) -> None:
    while len(bins) > settings.bins_max:
        steps = np.abs(np.diff(bins.woe(*missing, settings.smoothing)))
        bins.merge(int(np.argmin(steps)))


def _finish(
    column: Column,
    bins: _Bins,
    missing: tuple[int, int],
    settings: BinningSettings,
    groups: tuple[tuple[str, ...], ...] = (),
    unseen_bin: int | None = None,
) -> FittedBinning:
    goods = np.array([*bins.goods, missing[0]], dtype=np.int64)
    bads = np.array([*bins.bads, missing[1]], dtype=np.int64)
    woe = compute_woe(goods, bads, settings.smoothing)
    numeric = column.kind == ColumnKind.NUMERIC
    edges = tuple(float(label[0]) for label in bins.labels[1:]) if numeric else ()
    return FittedBinning(
        name=column.name,
        kind=column.kind,
        edges=edges,
        groups=groups,
        unseen_bin=unseen_bin,
        goods=tuple(int(g) for g in goods),
        bads=tuple(int(b) for b in bads),
        woe=tuple(float(w) for w in woe),
        iv=compute_iv(goods, bads, woe),
    )


def _missing_counts(values: Sequence[object], is_bad: npt.NDArray[np.bool_]) -> tuple[int, int]:
    missing = np.array([v is None for v in values])
    return int(np.sum(missing & ~is_bad)), int(np.sum(missing & is_bad))


def _prebin_edges(numbers: FloatArray, prebins: int) -> FloatArray:
    distinct: FloatArray = np.unique(numbers)
    if distinct.size <= prebins:
        return distinct[1:]
    quantiles: FloatArray = np.unique(
        np.quantile(numbers, np.linspace(0.0, 1.0, prebins + 1)[1:-1], method="higher")
    )
    above_minimum: FloatArray = quantiles[quantiles > distinct[0]]
    return above_minimum


def fit_numeric_binning(
    column: Column, is_bad: npt.NDArray[np.bool_], settings: BinningSettings
) -> FittedBinning:
    """Monotonic WOE bins for a numeric column (both trend directions tried)."""
    present = np.array([v is not None for v in column.values])
    numbers = np.array([v for v in column.values if v is not None], dtype=np.float64)
    missing = _missing_counts(column.values, is_bad)
    edges = _prebin_edges(numbers, settings.prebins)
    indices = np.searchsorted(edges, numbers, side="right")
    present_bad = is_bad[present]
    goods = np.bincount(indices[~present_bad], minlength=edges.size + 1).astype(np.int64)
    bads = np.bincount(indices[present_bad], minlength=edges.size + 1).astype(np.int64)
    # Each bin is labelled by its lower edge (-inf for the first) so merging keeps the left one.
    labels: list[list[float | str]] = [[-np.inf]]
    labels.extend([float(edge)] for edge in edges)
    candidates = []
    for sign in (1, -1):
        bins = _Bins(goods, bads, [list(label) for label in labels])
        _merge_small_bins(bins, missing, settings)
        _merge_until_monotonic(bins, missing, sign, settings.smoothing)
        _merge_to_max_bins(bins, missing, settings)
        candidates.append(_finish(column, bins, missing, settings))
    return max(candidates, key=lambda binning: binning.iv)


def fit_categorical_binning(
    column: Column, is_bad: npt.NDArray[np.bool_], settings: BinningSettings
) -> FittedBinning:
    """WOE bins for a categorical column: rare categories pooled, groups ordered by WOE."""
    missing = _missing_counts(column.values, is_bad)
    counts: dict[str, list[int]] = {}
    for value, bad in zip(column.values, is_bad, strict=True):
        if value is not None:
            counts.setdefault(str(value), [0, 0])[1 if bad else 0] += 1
    rows_total = len(column.values)
    common = sorted(c for c, (g, b) in counts.items() if g + b >= settings.rare_share * rows_total)
    rare = sorted(c for c in counts if c not in common)
    groups: list[list[float | str]] = [[c] for c in common]
    if rare:
        groups.append(list(rare))
    goods = np.array([sum(counts[str(c)][0] for c in group) for group in groups], dtype=np.int64)
    bads = np.array([sum(counts[str(c)][1] for c in group) for group in groups], dtype=np.int64)
    bins = _Bins(goods, bads, groups)
    order = np.argsort(bins.woe(*missing, settings.smoothing), kind="stable")
    bins = _Bins(goods[order], bads[order], [groups[i] for i in order])
    _merge_small_bins(bins, missing, settings)
    _merge_to_max_bins(bins, missing, settings)
    final_groups = tuple(tuple(sorted(str(c) for c in group)) for group in bins.labels)
    unseen_bin = next(
        (i for i, group in enumerate(final_groups) if rare and rare[0] in group), None
    )
    return _finish(column, bins, missing, settings, final_groups, unseen_bin)


def fit_binning(
    column: Column, is_bad: npt.NDArray[np.bool_], settings: BinningSettings
) -> FittedBinning:
    if column.kind == ColumnKind.NUMERIC:
        return fit_numeric_binning(column, is_bad, settings)
    return fit_categorical_binning(column, is_bad, settings)
