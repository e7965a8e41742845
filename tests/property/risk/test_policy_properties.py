"""Limit tree invariants for any income and score: steps, caps, group shares, monotonicity."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from node_api.kernel.money import Fen
from node_api.risk.policy import LimitBand, ProductRiskPolicy, compute_limits

POLICY = ProductRiskPolicy(
    approve_score_min=560,
    decline_score_below=500,
    limit_bands=(
        LimitBand(score_min=500, income_multiplier_bps=5_000, total_limit_fen_max=800_000),
        LimitBand(score_min=560, income_multiplier_bps=20_000, total_limit_fen_max=3_000_000),
        LimitBand(score_min=620, income_multiplier_bps=40_000, total_limit_fen_max=9_000_000),
    ),
    total_limit_fen_max=5_000_000,
    cash_share_bps=3_333,
    purchase_share_bps=9_000,
)
scores = st.integers(300, 900)
incomes = st.integers(0, 10**10)


@given(scores, incomes)
def test_every_limit_is_a_whole_step_within_caps(score: int, income_fen: int) -> None:
    limits = compute_limits(score, Fen(income_fen), POLICY)
    for amount in (limits.total_fen, limits.purchase_fen, limits.cash_fen):
        assert amount >= 0
        assert amount % POLICY.limit_step_fen == 0
    assert limits.total_fen <= POLICY.total_limit_fen_max
    assert limits.cash_fen <= limits.total_fen * POLICY.cash_share_bps // 10_000
    assert limits.purchase_fen <= limits.total_fen
    assert limits.total_fen <= income_fen * 40_000 // 10_000


@given(scores, incomes, incomes)
def test_more_income_never_lowers_the_limit(score: int, income_a: int, income_b: int) -> None:
    low, high = sorted((income_a, income_b))
    assert (
        compute_limits(score, Fen(low), POLICY).total_fen
        <= compute_limits(score, Fen(high), POLICY).total_fen
    )


@given(scores, scores, incomes)
def test_higher_score_never_lowers_the_limit(score_a: int, score_b: int, income_fen: int) -> None:
    low, high = sorted((score_a, score_b))
    assert (
        compute_limits(low, Fen(income_fen), POLICY).total_fen
        <= compute_limits(high, Fen(income_fen), POLICY).total_fen
    )
