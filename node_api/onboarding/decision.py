"""The pure decision of one application: fraud rules, policy, and limits at every level.

Both the live flow and replay call `compute_application_decision` with the same
inputs (facts from the decrypted application, the stored fraud signals, the card's
score, the stored policy version and product terms), so a stored decision can be
recomputed exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from node_api.kernel.money import Fen
from node_api.lending.limits import (
    ROOT_PATH,
    ProductGroup,
    group_path,
    product_group,
    product_path,
)
from node_api.lending.products import ProductTerms
from node_api.onboarding.liveness import LivenessVerdict, compute_liveness_reason
from node_api.onboarding.policies import OnboardingPolicy
from node_api.risk.fraud import FraudAssessment, FraudHit, compute_fraud_assessment
from node_api.risk.fraud_facts import ApplicationFacts, FraudSignals
from node_api.risk.policy import DecisionOutcome, LimitTree, compute_decision
from node_api.risk.scorecard import ScoreResult


class ApplicationDecision(StrEnum):
    APPROVED = "approved"
    DECLINED = "declined"
    REVIEW = "review"


_FROM_OUTCOME = {
    DecisionOutcome.APPROVE: ApplicationDecision.APPROVED,
    DecisionOutcome.DECLINE: ApplicationDecision.DECLINED,
    DecisionOutcome.REVIEW: ApplicationDecision.REVIEW,
}
LIMIT_BELOW_PRODUCT_MINIMUM = "LIMIT_BELOW_PRODUCT_MINIMUM"


@dataclass(frozen=True, slots=True)
class LineLimits:
    """The limit of every level of the line to open: total, each group, the product."""

    total_fen: Fen
    group_fen: Mapping[ProductGroup, Fen]
    product_code: str
    product_group: ProductGroup
    product_fen: Fen

    def by_path(self) -> dict[str, Fen]:
        """Limits keyed by the line's limit paths (`total`, `total/purchase`, ...)."""
        limits: dict[str, Fen] = {ROOT_PATH: self.total_fen}
        for group in sorted(self.group_fen):
            limits[group_path(group)] = self.group_fen[group]
        limits[product_path(self.product_group, self.product_code)] = self.product_fen
        return limits


def compute_line_limits(tree: LimitTree, terms: ProductTerms) -> LineLimits:
    """The product draws on its group's limit, capped by the product's own maximum."""
    group = product_group(terms.product_type)
    groups = {ProductGroup.PURCHASE: tree.purchase_fen, ProductGroup.CASH: tree.cash_fen}
    product_fen = Fen(min(groups[group], terms.limit_fen_max))
    return LineLimits(tree.total_fen, groups, terms.product_code, group, product_fen)


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """A decision as stored and compared: what replay must reproduce."""

    decision: ApplicationDecision
    reason_codes: tuple[str, ...]
    fraud_hits: tuple[FraudHit, ...]
    limits: Mapping[str, Fen]
    """Limits keyed by the line's limit paths (`LineLimits.by_path`)."""


@dataclass(frozen=True, slots=True)
class DecisionResult:
    decision: ApplicationDecision
    reason_codes: tuple[str, ...]
    """Policy and fraud reasons first; for declines and reviews, the card's reasons after."""
    fraud: FraudAssessment
    limits: LineLimits

    def to_record(self) -> DecisionRecord:
        """The stored, comparable form (what replay must reproduce)."""
        return DecisionRecord(
            self.decision, self.reason_codes, self.fraud.hits, self.limits.by_path()
        )


def _zero(limits: LineLimits) -> LineLimits:
    zero = Fen(0)
    groups = {group: zero for group in limits.group_fen}
    return LineLimits(zero, groups, limits.product_code, limits.product_group, zero)


def compute_application_decision(
    *,
    facts: ApplicationFacts,
    signals: FraudSignals,
    score: ScoreResult,
    monthly_income_fen: Fen,
    policy: OnboardingPolicy,
    terms: ProductTerms,
    liveness: LivenessVerdict | None = None,
) -> DecisionResult:
    """Fraud rules on the signals, then the product policy on score and income; a
    failed liveness rule (`policy.liveness`) declines whatever the score said."""
    fraud = compute_fraud_assessment(facts, signals, policy.fraud)
    verdict = compute_decision(
        score=score.score,
        missing_characteristics=len(score.missing),
        monthly_income_fen=monthly_income_fen,
        policy=policy.risk,
        fraud_outcome=fraud.outcome,
        fraud_codes=fraud.codes,
    )
    decision = _FROM_OUTCOME[verdict.outcome]
    reasons = list(verdict.reasons)
    limits = compute_line_limits(verdict.limits, terms)
    if decision is not ApplicationDecision.DECLINED and limits.product_fen < terms.limit_fen_min:
        decision, reasons = ApplicationDecision.DECLINED, [LIMIT_BELOW_PRODUCT_MINIMUM]
    liveness_reason = compute_liveness_reason(policy.liveness, liveness)
    if liveness_reason is not None:
        decision = ApplicationDecision.DECLINED
        reasons = [liveness_reason, *(r for r in reasons if r != LIMIT_BELOW_PRODUCT_MINIMUM)]
    if decision is not ApplicationDecision.APPROVED:
        reasons += [reason.code for reason in score.reasons if reason.code not in reasons]
    if decision is ApplicationDecision.DECLINED:
        limits = _zero(limits)
    return DecisionResult(decision, tuple(reasons), fraud, limits)


def parse_line_limits(limits_by_path: Mapping[str, Fen], terms: ProductTerms) -> LineLimits:
    """The `LineLimits` of stored limits (as `LineLimits.by_path` wrote them)."""
    group = product_group(terms.product_type)
    return LineLimits(
        total_fen=limits_by_path[ROOT_PATH],
        group_fen={g: limits_by_path[group_path(g)] for g in ProductGroup},
        product_code=terms.product_code,
        product_group=group,
        product_fen=limits_by_path[product_path(group, terms.product_code)],
    )
