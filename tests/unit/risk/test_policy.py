"""Credit policy: cut-offs, thin files, fraud precedence and the limit tree in fen."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from node_api.kernel.money import Fen
from node_api.risk.fraud_config import Severity
from node_api.risk.policy import (
    DecisionOutcome,
    LimitBand,
    PolicyDecision,
    ProductRiskPolicy,
    compute_decision,
    compute_limits,
    round_down_to_step,
)

POLICY = ProductRiskPolicy(
    approve_score_min=560,
    decline_score_below=520,
    missing_characteristics_max=2,
    limit_bands=(
        LimitBand(score_min=520, income_multiplier_bps=10_000, total_limit_fen_max=1_000_000),
        LimitBand(score_min=560, income_multiplier_bps=20_000, total_limit_fen_max=3_000_000),
        LimitBand(score_min=600, income_multiplier_bps=30_000, total_limit_fen_max=5_000_000),
    ),
    total_limit_fen_min=100_000,
    total_limit_fen_max=4_000_000,
    cash_share_bps=3_000,
)
INCOME_FEN = Fen(812_345)


def _decide(
    score: int,
    missing: int = 0,
    income: Fen = INCOME_FEN,
    fraud_outcome: Severity | None = None,
    fraud_codes: tuple[str, ...] = (),
) -> PolicyDecision:
    return compute_decision(
        score=score,
        missing_characteristics=missing,
        monthly_income_fen=income,
        policy=POLICY,
        fraud_outcome=fraud_outcome,
        fraud_codes=fraud_codes,
    )


def test_limit_is_income_times_multiplier_rounded_down_to_100_yuan() -> None:
    limits = compute_limits(570, INCOME_FEN, POLICY)
    assert limits.total_fen == 1_620_000  # 2 x 8,123.45 yuan = 16,246.90 -> 16,200
    assert limits.purchase_fen == 1_620_000
    assert limits.cash_fen == 480_000  # 30% = 4,860 yuan -> 4,800


def test_limit_is_capped_by_band_and_product() -> None:
    rich = Fen(10_000_000)
    assert compute_limits(530, rich, POLICY).total_fen == 1_000_000
    assert compute_limits(650, rich, POLICY).total_fen == 4_000_000


def test_score_below_every_band_gets_no_limit() -> None:
    assert compute_limits(400, INCOME_FEN, POLICY).total_fen == 0


def test_round_down_never_rounds_up() -> None:
    assert round_down_to_step(1_629_999, 10_000) == 1_620_000
    assert round_down_to_step(1_630_000, 10_000) == 1_630_000


def test_score_at_approve_cutoff_is_approved_with_limits() -> None:
    decision = _decide(560)
    assert decision.outcome == DecisionOutcome.APPROVE
    assert decision.reasons == ()
    assert decision.limits.total_fen == 1_620_000


def test_borderline_score_goes_to_review_with_proposed_limits() -> None:
    decision = _decide(559)
    assert decision.outcome == DecisionOutcome.REVIEW
    assert decision.reasons == ("SCORE_BORDERLINE",)
    assert decision.limits.total_fen == 810_000


def test_score_below_decline_cutoff_is_declined_without_limits() -> None:
    decision = _decide(519)
    assert decision.outcome == DecisionOutcome.DECLINE
    assert decision.reasons == ("SCORE_BELOW_CUTOFF",)
    assert decision.limits.total_fen == 0


def test_thin_file_goes_to_review_whatever_the_score() -> None:
    for score in (450, 700):
        decision = _decide(score, missing=3)
        assert decision.outcome == DecisionOutcome.REVIEW
        assert decision.reasons == ("THIN_FILE",)
    assert _decide(700, missing=2).outcome == DecisionOutcome.APPROVE


def test_limit_below_product_minimum_declines() -> None:
    decision = _decide(700, income=Fen(30_000))
    assert decision.outcome == DecisionOutcome.DECLINE
    assert decision.reasons == ("LIMIT_BELOW_MINIMUM",)


def test_fraud_decline_outranks_everything() -> None:
    decision = _decide(
        700, missing=5, fraud_outcome=Severity.DECLINE, fraud_codes=("BLACKLIST_ID",)
    )
    assert decision.outcome == DecisionOutcome.DECLINE
    assert decision.reasons == ("BLACKLIST_ID",)


def test_fraud_review_sends_a_good_score_to_review() -> None:
    decision = _decide(700, fraud_outcome=Severity.REVIEW, fraud_codes=("DEVICE_SHARED",))
    assert decision.outcome == DecisionOutcome.REVIEW
    assert decision.reasons == ("DEVICE_SHARED",)
    assert decision.limits.total_fen == 2_430_000


@pytest.mark.parametrize(
    "changes",
    [
        {"decline_score_below": 600},
        {"limit_bands": ()},
        {
            "limit_bands": (
                LimitBand(score_min=600, income_multiplier_bps=1, total_limit_fen_max=1),
                LimitBand(score_min=500, income_multiplier_bps=1, total_limit_fen_max=1),
            )
        },
        {"cash_share_bps": 10_001},
        {"limit_step_fen": 0},
    ],
)
def test_RevertWhen_policy_is_inconsistent(changes: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ProductRiskPolicy(**{**POLICY.model_dump(), **changes})
