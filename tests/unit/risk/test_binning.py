"""WOE binning: monotonic numeric bins, share floors, missing bin, pooled rare categories."""

from __future__ import annotations

import numpy as np
import pytest

from node_api.risk.binning import BinningSettings, compute_iv, compute_woe, fit_binning
from node_api.risk.tabular import Column, ColumnKind

SETTINGS = BinningSettings()


def _numeric_data(rows: int = 2000, seed: int = 7) -> tuple[Column, np.ndarray]:
    random = np.random.default_rng(seed)
    income = random.uniform(0, 100, rows)
    is_bad = random.random(rows) < 1 / (1 + np.exp((income - 40) / 15))
    values = tuple(None if n % 20 == 0 else float(v) for n, v in enumerate(income))
    return Column("income", ColumnKind.NUMERIC, values), is_bad


def test_woe_is_log_ratio_of_good_and_bad_shares_without_smoothing() -> None:
    goods, bads = np.array([30, 70]), np.array([20, 10])
    woe = compute_woe(goods, bads, smoothing=0.0)
    assert woe == pytest.approx([np.log(0.3 / (2 / 3)), np.log(0.7 / (1 / 3))])
    assert compute_iv(goods, bads, woe) == pytest.approx(
        (0.3 - 2 / 3) * woe[0] + (0.7 - 1 / 3) * woe[1]
    )


def test_empty_bin_gets_neutral_woe() -> None:
    assert compute_woe(np.array([50, 0]), np.array([50, 0]), smoothing=2.0)[1] == 0.0


def test_numeric_bins_are_monotonic_share_floored_and_capped() -> None:
    column, is_bad = _numeric_data()
    binning = fit_binning(column, is_bad, SETTINGS)
    range_woe = np.array(binning.woe[:-1])
    assert len(range_woe) >= 3
    assert np.all(np.diff(range_woe) > 0) or np.all(np.diff(range_woe) < 0)
    counts = np.array(binning.goods[:-1]) + np.array(binning.bads[:-1])
    assert counts.min() >= SETTINGS.bin_share_min * len(is_bad)
    assert len(range_woe) <= SETTINGS.bins_max
    assert binning.iv > 0.1


def test_missing_values_get_their_own_last_bin() -> None:
    column, is_bad = _numeric_data()
    binning = fit_binning(column, is_bad, SETTINGS)
    missing = binning.goods[-1] + binning.bads[-1]
    assert missing == sum(v is None for v in column.values)
    assert binning.assign([None])[0] == binning.missing_bin


def test_numeric_assignment_puts_edges_in_the_upper_bin() -> None:
    column, is_bad = _numeric_data()
    binning = fit_binning(column, is_bad, SETTINGS)
    edge = binning.edges[0]
    assert list(binning.assign([edge - 1e-9, edge, -1e9, 1e9])) == [0, 1, 0, len(binning.edges)]


def test_categorical_rare_categories_are_pooled_and_take_unseen_values() -> None:
    random = np.random.default_rng(3)
    categories = ["own"] * 600 + ["rent"] * 300 + ["parents"] * 85 + ["boat"] * 10 + ["tent"] * 5
    risk = {"own": 0.1, "rent": 0.4, "parents": 0.25, "boat": 0.3, "tent": 0.3}
    is_bad = np.array([random.random() < risk[c] for c in categories])
    column = Column("home", ColumnKind.CATEGORICAL, tuple(categories))
    binning = fit_binning(column, is_bad, SETTINGS)
    pooled = next(group for group in binning.groups if "boat" in group)
    assert "tent" in pooled
    assert binning.unseen_bin == binning.groups.index(pooled)
    assert binning.assign(["castle"])[0] == binning.unseen_bin
    assert sorted(c for g in binning.groups for c in g) == sorted(set(categories))
    assert binning.transform(["own"])[0] > binning.transform(["rent"])[0]


def test_categorical_without_rare_categories_sends_unseen_to_missing_bin() -> None:
    categories = ("a", "b") * 200
    is_bad = np.array([n % 4 == 0 for n in range(400)])
    binning = fit_binning(Column("c", ColumnKind.CATEGORICAL, categories), is_bad, SETTINGS)
    assert binning.unseen_bin is None
    assert binning.assign(["zzz"])[0] == binning.missing_bin


def test_uninformative_column_collapses_to_one_bin() -> None:
    values = tuple(float(n % 10) for n in range(1000))
    is_bad = np.array([n % 7 == 0 for n in range(1000)])
    binning = fit_binning(Column("noise", ColumnKind.NUMERIC, values), is_bad, SETTINGS)
    assert binning.iv < 0.02
