"""Scorecard training on the shipped data sets: targets met, card faithful to the model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from node_api.risk.card import parse_card
from node_api.risk.scorecard import Scorecard
from node_api.risk.tabular import read_csv_rows
from node_api.risk.training import TrainingResult
from tests.unit.risk.conftest import CREDIT_DATA_CSV, GERMAN_CSV


def test_german_credit_cross_validated_auc_meets_target(german_training: TrainingResult) -> None:
    metrics = german_training.card.metrics
    assert metrics.auc >= 0.78
    assert metrics.folds == 5 and len(metrics.auc_by_fold) == 5
    assert metrics.gini == pytest.approx(2 * metrics.auc - 1)
    assert 0.3 < metrics.ks < 1.0
    assert metrics.n_rows == 1000
    assert metrics.bad_rate == pytest.approx(0.3)


def test_credit_data_cross_validated_auc_meets_target(credit_data_training: TrainingResult) -> None:
    metrics = credit_data_training.card.metrics
    assert metrics.auc >= 0.83
    assert metrics.gini == pytest.approx(2 * metrics.auc - 1)
    assert 0.3 < metrics.ks < 1.0
    assert metrics.n_rows == 4454
    assert metrics.bad_rate == pytest.approx(1254 / 4454)
    assert "rownames" not in credit_data_training.card.training["information_values"]


def _assert_card_scores_like_model(training: TrainingResult, csv_path: Path) -> None:
    """JSON card in plain Python vs the fitted model's WOE x coefficients, every row."""
    card = parse_card(training.card.to_json())
    scorecard = Scorecard(card)
    _, rows = read_csv_rows(csv_path)
    columns = {column.name: column.values for column in training.dataset.columns}
    model_scores = card.scaling.offset - card.scaling.factor * training.model.log_odds_bad(columns)
    assert len(rows) == len(model_scores) == training.dataset.n_rows
    for row, model_score in zip(rows, model_scores, strict=True):
        result = scorecard.score(row)
        assert abs(result.score_exact - model_score) < 1e-9
        assert result.score == round(float(model_score))


def test_german_card_scores_every_training_row_like_the_model(
    german_training: TrainingResult,
) -> None:
    _assert_card_scores_like_model(german_training, GERMAN_CSV)


def test_credit_data_card_scores_every_training_row_like_the_model(
    credit_data_training: TrainingResult,
) -> None:
    _assert_card_scores_like_model(credit_data_training, CREDIT_DATA_CSV)


@pytest.mark.parametrize(
    ("name", "fixture"), [("german", "german_training"), ("credit_data", "credit_data_training")]
)
def test_shipped_cards_match_a_fresh_training(
    name: str, fixture: str, request: pytest.FixtureRequest
) -> None:
    fresh = request.getfixturevalue(fixture).card
    shipped = Scorecard.load_packaged(name).card
    assert [c.name for c in shipped.characteristics] == [c.name for c in fresh.characteristics]
    for shipped_c, fresh_c in zip(shipped.characteristics, fresh.characteristics, strict=True):
        assert shipped_c.edges == pytest.approx(fresh_c.edges)
        assert [b.categories for b in shipped_c.bins] == [b.categories for b in fresh_c.bins]
        assert [b.points for b in shipped_c.bins] == pytest.approx(
            [b.points for b in fresh_c.bins], abs=1e-6
        )
    assert shipped.metrics.auc == pytest.approx(fresh.metrics.auc, abs=1e-6)


def test_card_points_follow_pdo_scaling(german_training: TrainingResult) -> None:
    card = german_training.card
    assert (card.scaling.base_points, card.scaling.base_odds, card.scaling.pdo) == (
        600.0,
        50.0,
        20.0,
    )
    # Odds of 50:1 give 600 points and doubling the odds adds 20.
    assert card.scaling.offset + card.scaling.factor * np.log(50) == pytest.approx(600.0)
    assert card.scaling.factor * np.log(2) == pytest.approx(20.0)
    assert card.base_points == pytest.approx(
        card.scaling.offset - card.scaling.factor * card.intercept
    )


def test_numeric_characteristics_have_monotonic_points(german_training: TrainingResult) -> None:
    for characteristic in german_training.card.characteristics:
        assert characteristic.coefficient < 0
        if characteristic.kind == "numeric":
            points = [b.points for b in characteristic.bins[:-1]]
            steps = np.sign(np.diff(points))
            assert len(set(steps)) <= 1 and 0 not in steps


def test_training_distribution_shares_sum_to_one(credit_data_training: TrainingResult) -> None:
    card = credit_data_training.card
    for characteristic in card.characteristics:
        assert sum(b.share for b in characteristic.bins) == pytest.approx(1.0)
        assert sum(b.count for b in characteristic.bins) == card.metrics.n_rows
    assert sum(card.score_bands.shares) == pytest.approx(1.0)
    assert len(card.score_bands.shares) == len(card.score_bands.edges) + 1


def test_cli_metrics_summary_has_the_documented_keys(german_training: TrainingResult) -> None:
    metrics = german_training.get_metrics()
    assert {"auc", "ks", "gini", "n_rows", "bad_rate"} <= metrics.keys()
    assert metrics["model_id"] == german_training.card.model_id
