"""Binning invariants on arbitrary data: monotonic WOE, share floors, counts preserved."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from node_api.risk.binning import BinningSettings, fit_binning
from node_api.risk.tabular import Column, ColumnKind

SETTINGS = BinningSettings()

rows = st.lists(
    st.tuples(st.one_of(st.none(), st.integers(-50, 50).map(float)), st.booleans()),
    min_size=40,
    max_size=300,
).filter(lambda data: 0 < sum(bad for _, bad in data) < len(data))


@given(rows)
def test_numeric_binning_invariants(data: list[tuple[float | None, bool]]) -> None:
    values = tuple(value for value, _ in data)
    is_bad = np.array([bad for _, bad in data])
    binning = fit_binning(Column("x", ColumnKind.NUMERIC, values), is_bad, SETTINGS)
    assert sum(binning.goods) + sum(binning.bads) == len(data)
    assert sum(binning.bads) == int(is_bad.sum())
    assert binning.goods[-1] + binning.bads[-1] == sum(v is None for v in values)
    steps = np.diff(binning.woe[:-1])
    assert np.all(steps > 0) or np.all(steps < 0)
    range_counts = np.array(binning.goods[:-1]) + np.array(binning.bads[:-1])
    if len(range_counts) > 1:
        assert range_counts.min() >= SETTINGS.bin_share_min * len(data)
    assert len(range_counts) <= SETTINGS.bins_max
    assigned = binning.assign(values)
    assert np.bincount(assigned, minlength=len(binning.woe)).tolist() == [
        g + b for g, b in zip(binning.goods, binning.bads, strict=True)
    ]


@given(rows, st.lists(st.sampled_from("abcdefgh"), min_size=300, max_size=300))
def test_categorical_binning_covers_every_category(
    data: list[tuple[float | None, bool]], labels: list[str]
) -> None:
    values = tuple(
        None if v is None else label for (v, _), label in zip(data, labels, strict=False)
    )
    is_bad = np.array([bad for _, bad in data])
    binning = fit_binning(Column("c", ColumnKind.CATEGORICAL, values), is_bad, SETTINGS)
    seen = {v for v in values if v is not None}
    assert {c for group in binning.groups for c in group} == seen
    assert sum(binning.goods) + sum(binning.bads) == len(data)
