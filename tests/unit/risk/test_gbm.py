"""The boosted model: trained with LightGBM, served in plain Python exactly as fitted, with
monotonic features, additive reason codes and a content-addressed card."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from node_api.risk.card import parse_card
from node_api.risk.gbm_card import compute_features, predict
from node_api.risk.gbm_fit import GbmSettings
from node_api.risk.gbm_training import GbmTrainingResult, GbmTrainingSettings, train_gbm
from node_api.risk.model_registry import check_servable
from node_api.risk.scorecard import Scorecard
from node_api.risk.tabular import read_csv_rows
from tests.unit.risk.conftest import CREDIT_DATA_CSV, GERMAN_CSV

ROUNDS = 25
"""Few trees: seconds to fit; the README's figures come from the default 300."""


@pytest.fixture(scope="module")
def credit_gbm() -> GbmTrainingResult:
    """credit_data (numeric with missing values, and categorical) with a few trees."""
    settings = GbmTrainingSettings(gbm=GbmSettings(rounds=ROUNDS), folds=2, compare=False)
    return train_gbm(CREDIT_DATA_CSV, "Status", "bad", ("rownames",), settings=settings)


def _rows(path: Any, drop: tuple[str, ...]) -> list[dict[str, str]]:
    _header, rows = read_csv_rows(path)
    return [{k: v for k, v in row.items() if k not in drop} for row in rows]


def test_served_scores_equal_the_library_prediction_on_every_training_row(
    credit_gbm: GbmTrainingResult,
) -> None:
    card = credit_gbm.card
    served = Scorecard(card)
    columns = {c.name: c.values for c in credit_gbm.dataset.columns}
    expected = card.scaling.offset - card.scaling.factor * credit_gbm.model.log_odds_bad(columns)
    rows = _rows(CREDIT_DATA_CSV, ("rownames", "Status"))
    labelled = [row for row in _rows(CREDIT_DATA_CSV, ()) if row["Status"].strip()]
    assert len(labelled) == len(rows) == len(expected)
    exact = np.array([served.score(row).score_exact for row in rows])
    assert np.max(np.abs(exact - expected)) < 1e-6
    assert credit_gbm.export_gap < 1e-9


def test_contributions_and_baseline_add_up_to_the_log_odds(credit_gbm: GbmTrainingResult) -> None:
    section = credit_gbm.card.gbm
    assert section is not None
    served = Scorecard(credit_gbm.card)
    for row in _rows(CREDIT_DATA_CSV, ("rownames", "Status"))[:200]:
        result = served.score(row)
        log_odds = (credit_gbm.card.scaling.offset - result.score_exact) / (
            credit_gbm.card.scaling.factor
        )
        numbers = {
            c.name: (None if row[c.name] in ("", "NA") else float(row[c.name]))
            for c in credit_gbm.card.characteristics
            if c.kind == "numeric"
        }
        woe = {
            c.name: c.bins[result.bin_indices[c.name]].woe for c in credit_gbm.card.characteristics
        }
        output = predict(section, compute_features(section, numbers, woe))
        assert math.isclose(output.log_odds_bad, log_odds, abs_tol=1e-9)
        assert math.isclose(
            output.baseline + sum(output.contributions.values()), output.log_odds_bad, abs_tol=1e-9
        )


def test_reason_codes_are_the_features_that_cost_the_most_points(
    credit_gbm: GbmTrainingResult,
) -> None:
    section = credit_gbm.card.gbm
    assert section is not None
    codes = {feature.reason_code for feature in section.features}
    served = Scorecard(credit_gbm.card)
    scored = [served.score(row) for row in _rows(CREDIT_DATA_CSV, ("rownames", "Status"))[:300]]
    worst = min(scored, key=lambda result: result.score_exact)
    assert worst.reasons, "the lowest score has reasons"
    lost = [reason.points_lost for reason in worst.reasons]
    assert lost == sorted(lost, reverse=True) and all(points > 0 for points in lost)
    assert {reason.code for reason in worst.reasons} <= codes


def test_every_feature_moves_the_log_odds_only_in_its_constrained_direction(
    credit_gbm: GbmTrainingResult,
) -> None:
    section = credit_gbm.card.gbm
    assert section is not None
    assert {feature.monotone for feature in section.features} - {0} == {-1, 1}
    rng = np.random.default_rng(7)
    columns = {c.name: c.values for c in credit_gbm.dataset.columns}
    from node_api.risk.gbm_fit import build_feature_matrix

    binnings = {b.name: b for b in credit_gbm.model.binnings}
    matrix = build_feature_matrix(credit_gbm.model.specs, binnings, columns)
    # a linear part's coefficient on a categorical's WOE is free: a woe feature's
    # direction binds the trees only; every other feature's binds the whole log-odds
    trees_only = section.model_copy(update={"linear": None})
    for index, feature in enumerate(section.features):
        if feature.monotone == 0:
            continue
        served = trees_only if feature.kind == "woe" else section
        present = matrix[~np.isnan(matrix[:, index]), index]
        grid = np.quantile(present, np.linspace(0, 1, 12))
        for row in rng.choice(len(matrix), size=5, replace=False):
            values = list(matrix[row])
            outputs = []
            for value in grid:
                values[index] = float(value)
                outputs.append(predict(served, values).log_odds_bad)
            steps = np.diff(outputs) * feature.monotone
            assert np.all(steps >= -1e-12), feature.name


def test_the_card_round_trips_and_an_edited_tree_no_longer_passes_for_it(
    credit_gbm: GbmTrainingResult,
) -> None:
    text = credit_gbm.card.to_json()
    assert parse_card(text) == credit_gbm.card
    check_servable(credit_gbm.card)
    document = json.loads(text)
    document["gbm"]["trees"][0]["leaf_value"][0] += 0.5
    with pytest.raises(Exception, match="model_id"):
        parse_card(json.dumps(document))


def test_a_scorecard_card_has_no_gbm_key_and_keeps_its_model_id() -> None:
    packaged = Scorecard.load_packaged("german").card
    assert "gbm" not in json.loads(packaged.to_json())
    assert packaged.model_id == packaged.compute_model_id()


def test_a_tree_feature_reading_a_characteristic_of_the_wrong_kind_is_refused(
    credit_gbm: GbmTrainingResult,
) -> None:
    from node_api.kernel.errors import CreditNetValueError

    section = credit_gbm.card.gbm
    assert section is not None
    categorical = next(c.name for c in credit_gbm.card.characteristics if c.kind == "categorical")
    raw = next(f for f in section.features if f.kind == "raw")
    features = tuple(
        f.model_copy(update={"characteristics": (categorical,)}) if f is raw else f
        for f in section.features
    )
    card = credit_gbm.card.model_copy(
        update={"gbm": section.model_copy(update={"features": features})}
    ).with_model_id()
    with pytest.raises(CreditNetValueError) as refused:
        check_servable(card)
    assert refused.value.field == f"card.gbm.features.{raw.name}"


def test_gbm_training_on_german_reports_all_three_recipes_on_the_same_folds() -> None:
    settings = GbmTrainingSettings(gbm=GbmSettings(rounds=ROUNDS, ratios=False), folds=2)
    result = train_gbm(GERMAN_CSV, "creditability", "bad", settings=settings)
    compared = result.card.training["cross_validation"]
    assert isinstance(compared, dict)
    for recipe in ("gbm", "scorecard", "logistic_onehot"):
        figures = compared[recipe]
        assert isinstance(figures, dict)
        auc = figures["auc"]
        assert isinstance(auc, float) and 0.6 < auc < 0.9
    assert result.card.gbm is not None
    assert all(f.kind != "ratio" for f in result.card.gbm.features)
