"""Rates, deciles, expected bad rates and swap sets, on hand-built outcomes."""

from __future__ import annotations

import math

import pytest

from node_api.kernel.money import Fen
from node_api.risk.decision_stats import (
    Outcome,
    SwapCell,
    compute_bad_probability,
    compute_deciles,
    compute_mean_rate_bps,
    compute_rate_bps,
    summarize_swap_set,
)
from node_api.risk.scorecard import Scorecard


def test_rates_round_half_even_and_an_empty_population_has_none() -> None:
    assert compute_rate_bps(1, 3) == 3_333
    assert compute_rate_bps(1, 20_000) == 0  # 0.5 bps rounds to even
    assert compute_rate_bps(3, 20_000) == 2  # 1.5 bps rounds to even
    assert compute_rate_bps(0, 0) is None


def test_deciles_are_nearest_rank_scores_that_occurred() -> None:
    assert compute_deciles(list(range(1, 101))) == [1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    assert compute_deciles([500]) == [500] * 11
    assert compute_deciles([700, 400, 550]) == [400] * 4 + [550] * 3 + [700] * 4
    assert compute_deciles([]) == []


def test_the_bad_probability_inverts_the_cards_scaling() -> None:
    scaling = Scorecard.load_packaged("german").card.scaling
    assert compute_bad_probability(scaling, 600) == pytest.approx(1 / 51)
    odds_doubled = compute_bad_probability(scaling, 620)
    assert odds_doubled == pytest.approx(1 / 101)
    assert compute_bad_probability(scaling, 10**9) == 0.0
    assert compute_mean_rate_bps([0.02, 0.04]) == 300
    assert compute_mean_rate_bps([]) is None


def _outcome(decision: str, limit_fen: int = 0, probability: float = 0.1) -> Outcome:
    return Outcome(decision == "approved", decision == "review", Fen(limit_fen), probability)


def test_the_swap_set_counts_each_cell_and_sums_the_limits_of_approvals_only() -> None:
    pairs = [
        (_outcome("approved", 100, 0.02), _outcome("approved", 150, 0.03)),
        (_outcome("approved", 200, 0.04), _outcome("declined", 0, 0.05)),
        (_outcome("review", 300, 0.08), _outcome("approved", 300, 0.09)),
        (_outcome("declined", 0, 0.3), _outcome("review", 50, 0.2)),
    ]
    summary = summarize_swap_set(pairs)
    cells = summary.cells
    assert [cells[cell].applications for cell in SwapCell] == [1, 1, 1, 1]
    both = cells[SwapCell.APPROVED_BY_BOTH]
    assert (both.old_limit_total_fen, both.new_limit_total_fen) == (100, 150)
    assert cells[SwapCell.APPROVED_BY_OLD_ONLY].new_limit_total_fen == 0
    new_only = cells[SwapCell.APPROVED_BY_NEW_ONLY]
    assert (new_only.old_limit_total_fen, new_only.new_limit_total_fen) == (0, 300)
    assert new_only.old_expected_bad_rate_bps == 800
    assert new_only.new_expected_bad_rate_bps == 900
    old, new = summary.old, summary.new
    assert (old.approved, old.review, old.declined) == (2, 1, 1)
    assert (new.approved, new.review, new.declined) == (2, 1, 1)
    assert old.approval_rate_bps == new.approval_rate_bps == 5_000
    assert old.expected_bad_rate_bps == 300  # mean of 0.02 and 0.04
    assert new.expected_bad_rate_bps == 600  # mean of 0.03 and 0.09
    assert (old.approved_limit_total_fen, new.approved_limit_total_fen) == (300, 450)
    assert math.isclose(sum(c.applications for c in cells.values()), summary.applications)
