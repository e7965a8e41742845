"""The boosted model is an average of boosters: `bags` seeds on every feature and `bags`
more without the pairwise ratios; the card serves exactly that average."""

from __future__ import annotations

import math

import numpy as np
import pytest

from node_api.kernel.errors import CreditNetError
from node_api.risk.gbm_card import compute_features, predict
from node_api.risk.gbm_fit import (
    GbmSettings,
    build_feature_matrix,
    check_export,
    export_gbm_section,
    fit_gbm_model,
)
from node_api.risk.tabular import Column, ColumnKind


def _synthetic(rows: int) -> tuple[list[Column], np.ndarray]:
    generator = np.random.default_rng(7)
    income = generator.uniform(100.0, 400.0, size=rows)
    debt = generator.uniform(0.0, 3000.0, size=rows)
    age = generator.integers(20, 70, size=rows).astype(float)
    job = generator.choice(["fixed", "partime", "freelance"], size=rows)
    score = debt / income / 5.0 - (job == "fixed") - (age - 40.0) / 30.0
    is_bad = generator.uniform(size=rows) < 1.0 / (1.0 + np.exp(-score))
    columns = [
        Column("income", ColumnKind.NUMERIC, tuple(float(v) for v in income)),
        Column("debt", ColumnKind.NUMERIC, tuple(float(v) for v in debt)),
        Column("age", ColumnKind.NUMERIC, tuple(float(v) for v in age)),
        Column("job", ColumnKind.CATEGORICAL, tuple(str(v) for v in job)),
    ]
    return columns, is_bad


def test_the_model_is_the_mean_of_its_boosters_and_one_half_never_reads_a_pairwise_ratio() -> None:
    columns, is_bad = _synthetic(600)
    # trees from zero (no linear baseline): the log-odds is the boosters' mean alone
    model = fit_gbm_model(columns, is_bad, GbmSettings(rounds=15, bags=3, linear="never"), seed=4)
    pairwise = {i for i, spec in enumerate(model.specs) if spec.pairwise}
    assert {model.specs[i].name for i in pairwise} == {"income/debt", "income/age", "debt/age"}
    assert len(model.boosters) == 6
    everything = tuple(range(len(model.specs)))
    assert [b.features == everything for b in model.boosters] == [True] * 3 + [False] * 3
    for fitted in model.boosters[3:]:
        assert set(fitted.features) == set(everything) - pairwise
    data = {c.name: c.values for c in columns}
    matrix = build_feature_matrix(model.specs, {b.name: b for b in model.binnings}, data)
    each = [b.booster.predict(matrix[:, list(b.features)], raw_score=True) for b in model.boosters]
    assert np.allclose(model.log_odds_bad(data), np.mean(each, axis=0), rtol=0.0, atol=1e-12)
    # each booster has its own seed: its own row and feature subsamples, so its own trees
    assert not np.allclose(each[0], each[1])
    assert not np.allclose(each[3], each[4])


def test_the_card_serves_the_average_exactly_with_additive_contributions() -> None:
    columns, is_bad = _synthetic(400)
    model = fit_gbm_model(columns, is_bad, GbmSettings(rounds=12, bags=2))
    codes = {c.name: f"RC{i:02d}" for i, c in enumerate(columns)}
    section = export_gbm_section(model, {}, codes)
    assert len(section.trees) == 4 * 12
    data = {c.name: c.values for c in columns}
    kinds = {"income": "numeric", "debt": "numeric", "age": "numeric", "job": "categorical"}
    assert check_export(section, model, data, kinds) <= 1e-9
    expected = model.log_odds_bad(data)
    job = next(b for b in model.binnings if b.name == "job")
    for row in range(0, 400, 37):
        numbers: dict[str, float | None] = {}
        for column in columns[:3]:
            value = column.values[row]
            assert isinstance(value, float)
            numbers[column.name] = value
        woe = {"job": float(job.transform([data["job"][row]])[0])}
        output = predict(section, compute_features(section, numbers, woe))
        assert math.isclose(output.log_odds_bad, float(expected[row]), abs_tol=1e-9)
        total = output.baseline + sum(output.contributions.values())
        assert math.isclose(total, output.log_odds_bad, abs_tol=1e-9)


def test_without_pairwise_ratios_or_the_mix_only_one_feature_set_is_bagged() -> None:
    columns, is_bad = _synthetic(300)
    plain = fit_gbm_model(columns, is_bad, GbmSettings(rounds=3, bags=2, ratios=False))
    assert len(plain.boosters) == 2 and not any(s.pairwise for s in plain.specs)
    unmixed = fit_gbm_model(columns, is_bad, GbmSettings(rounds=3, bags=2, ratio_mix=False))
    everything = tuple(range(len(unmixed.specs)))
    assert [b.features for b in unmixed.boosters] == [everything, everything]


def test_RevertWhen_no_booster_is_asked_for() -> None:
    columns, is_bad = _synthetic(100)
    with pytest.raises(CreditNetError) as refused:
        fit_gbm_model(columns, is_bad, GbmSettings(rounds=3, bags=0))
    assert refused.value.field == "bags"
