"""Credit policy: cut-offs per product, and the limit tree from score band and income.

Integers in fen throughout. A limit is income x the band's multiplier (in basis
points), capped by the band and the product, then rounded DOWN to the product's
step (100 yuan by default) so a limit is never granted above what policy allows.
The purchase and cash groups are shares of the total, rounded down the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from node_api.kernel.money import BPS_DENOMINATOR, Bps, Fen, div_floor
from node_api.risk.fraud_config import Severity

LIMIT_STEP_FEN_DEFAULT = Fen(10_000)


class DecisionOutcome(StrEnum):
    APPROVE = "approve"
    REVIEW = "review"
    DECLINE = "decline"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LimitBand(_Frozen):
    """From `score_min` up (until the next band): income multiplier and a cap."""

    score_min: int
    income_multiplier_bps: Bps = Field(ge=0)
    total_limit_fen_max: int = Field(ge=0)


class ProductRiskPolicy(_Frozen):
    """Per-product decision thresholds and limit rules."""

    approve_score_min: int
    decline_score_below: int
    missing_characteristics_max: int = Field(default=3, ge=0)
    limit_bands: tuple[LimitBand, ...]
    total_limit_fen_min: int = Field(default=50_000, ge=0)
    total_limit_fen_max: int = Field(ge=0)
    purchase_share_bps: Bps = Field(default=Bps(BPS_DENOMINATOR), ge=0, le=BPS_DENOMINATOR)
    cash_share_bps: Bps = Field(default=Bps(3_000), ge=0, le=BPS_DENOMINATOR)
    limit_step_fen: int = Field(default=LIMIT_STEP_FEN_DEFAULT, gt=0)

    @model_validator(mode="after")
    def _check(self) -> ProductRiskPolicy:
        if self.decline_score_below > self.approve_score_min:
            raise ValueError("decline_score_below must not exceed approve_score_min")
        minimums = [band.score_min for band in self.limit_bands]
        if not minimums or minimums != sorted(set(minimums)):
            raise ValueError("limit_bands must be non-empty with strictly increasing score_min")
        return self


@dataclass(frozen=True, slots=True)
class LimitTree:
    """Total line and the two groups under it; each group draws on the total."""

    total_fen: Fen
    purchase_fen: Fen
    cash_fen: Fen


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    outcome: DecisionOutcome
    reasons: tuple[str, ...]
    limits: LimitTree


ZERO_LIMITS = LimitTree(Fen(0), Fen(0), Fen(0))


def round_down_to_step(amount_fen: int, step_fen: int) -> Fen:
    """Largest multiple of `step_fen` not above `amount_fen` (never rounds a limit up)."""
    return Fen(div_floor(amount_fen, step_fen) * step_fen)


def _share(amount_fen: int, share_bps: Bps, step_fen: int) -> Fen:
    return round_down_to_step(div_floor(amount_fen * share_bps, BPS_DENOMINATOR), step_fen)


def get_limit_band(score: int, bands: Sequence[LimitBand]) -> LimitBand | None:
    """The band with the highest `score_min` not above `score`."""
    eligible = [band for band in bands if band.score_min <= score]
    return eligible[-1] if eligible else None


def compute_limits(score: int, monthly_income_fen: Fen, policy: ProductRiskPolicy) -> LimitTree:
    """The limit tree for a score and declared monthly income (zero below every band)."""
    if monthly_income_fen < 0:
        raise ValueError("monthly income must not be negative")
    band = get_limit_band(score, policy.limit_bands)
    if band is None:
        return ZERO_LIMITS
    by_income_fen = div_floor(monthly_income_fen * band.income_multiplier_bps, BPS_DENOMINATOR)
    capped_fen = min(by_income_fen, band.total_limit_fen_max, policy.total_limit_fen_max)
    total_fen = round_down_to_step(capped_fen, policy.limit_step_fen)
    return LimitTree(
        total_fen=total_fen,
        purchase_fen=_share(total_fen, policy.purchase_share_bps, policy.limit_step_fen),
        cash_fen=_share(total_fen, policy.cash_share_bps, policy.limit_step_fen),
    )


def compute_decision(
    *,
    score: int,
    missing_characteristics: int,
    monthly_income_fen: Fen,
    policy: ProductRiskPolicy,
    fraud_outcome: Severity | None = None,
    fraud_codes: Sequence[str] = (),
) -> PolicyDecision:
    """Approve, review or decline, with reasons, and the limits that go with it.

    Precedence: a fraud decline declines; a thin file (too many missing
    characteristics, so the score is unreliable) goes to review; then the score
    cut-offs and the minimum limit; borderline scores and fraud review hits review.
    Declines carry zero limits; reviews carry the limits a reviewer would grant.
    """
    if fraud_outcome == Severity.DECLINE:
        return PolicyDecision(DecisionOutcome.DECLINE, tuple(fraud_codes), ZERO_LIMITS)
    limits = compute_limits(score, monthly_income_fen, policy)
    review_reasons = list(fraud_codes) if fraud_outcome == Severity.REVIEW else []
    if missing_characteristics > policy.missing_characteristics_max:
        return PolicyDecision(DecisionOutcome.REVIEW, ("THIN_FILE", *review_reasons), limits)
    if score < policy.decline_score_below:
        return PolicyDecision(DecisionOutcome.DECLINE, ("SCORE_BELOW_CUTOFF",), ZERO_LIMITS)
    if limits.total_fen < policy.total_limit_fen_min:
        return PolicyDecision(DecisionOutcome.DECLINE, ("LIMIT_BELOW_MINIMUM",), ZERO_LIMITS)
    if score < policy.approve_score_min:
        review_reasons.insert(0, "SCORE_BORDERLINE")
    if review_reasons:
        return PolicyDecision(DecisionOutcome.REVIEW, tuple(review_reasons), limits)
    return PolicyDecision(DecisionOutcome.APPROVE, (), limits)
