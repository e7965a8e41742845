"""Population stability: PSI per characteristic and of the score, with bands."""

from __future__ import annotations

import math

import pytest

from node_api.risk.monitoring import (
    LiveCounts,
    StabilityBand,
    compute_psi,
    compute_stability_report,
    get_stability_band,
)
from node_api.risk.scorecard import Scorecard
from node_api.risk.tabular import read_csv_rows
from node_api.risk.training import TrainingResult
from tests.unit.risk.conftest import CREDIT_DATA_CSV


def test_psi_matches_the_formula() -> None:
    expected = (0.9 - 0.5) * math.log(0.9 / 0.5) + (0.1 - 0.5) * math.log(0.1 / 0.5)
    assert compute_psi([0.5, 0.5], [90, 10]) == pytest.approx(expected)


def test_psi_of_identical_distribution_is_zero() -> None:
    assert compute_psi([0.2, 0.3, 0.5, 0.0], [20, 30, 50, 0]) == 0.0


def test_psi_with_empty_live_bin_is_finite() -> None:
    assert math.isfinite(compute_psi([0.5, 0.5], [100, 0]))


def test_RevertWhen_bins_do_not_line_up() -> None:
    with pytest.raises(ValueError, match="same bins"):
        compute_psi([0.5, 0.5], [1, 2, 3])


@pytest.mark.parametrize(
    ("psi", "band"),
    [
        (0.0, StabilityBand.STABLE),
        (0.0999, StabilityBand.STABLE),
        (0.1, StabilityBand.WATCH),
        (0.2499, StabilityBand.WATCH),
        (0.25, StabilityBand.SHIFT),
    ],
)
def test_bands_split_at_point_one_and_point_two_five(psi: float, band: StabilityBand) -> None:
    assert get_stability_band(psi) == band


def test_training_data_against_itself_is_stable(credit_data_training: TrainingResult) -> None:
    card = credit_data_training.card
    scorecard = Scorecard(card)
    live = LiveCounts.empty(card)
    _, rows = read_csv_rows(CREDIT_DATA_CSV)
    for row in rows:
        live.add(scorecard.score(row))
    report = compute_stability_report(card, live)
    assert report.total.psi < 1e-9
    assert report.total.live_count == len(rows)
    for result in report.characteristics.values():
        assert result.psi < 1e-9
        assert result.band == StabilityBand.STABLE
    assert report.total.band == StabilityBand.STABLE


def test_shifted_population_is_flagged() -> None:
    scorecard = Scorecard.load_packaged("german")
    live = LiveCounts.empty(scorecard.card)
    for _ in range(200):
        live.add(scorecard.score({"duration_in_month": 72, "credit_amount": 15000}))
    report = compute_stability_report(scorecard.card, live)
    assert report.characteristics["duration_in_month"].band == StabilityBand.SHIFT
    assert report.total.band == StabilityBand.SHIFT


def test_RevertWhen_counts_come_from_another_card() -> None:
    german = Scorecard.load_packaged("german")
    other = Scorecard.load_packaged("credit_data")
    live = LiveCounts.empty(german.card)
    with pytest.raises(ValueError, match="different card"):
        live.add(other.score({}))
    with pytest.raises(ValueError, match="different card"):
        compute_stability_report(other.card, live)
