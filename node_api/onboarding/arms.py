"""Champion/challenger in the decision flow: route the applicant, decide both arms, store both.

Without a challenger the policy in force decides alone. With one, the applicant's bucket
(`risk.challenger`, from the dedupe key) picks the arm that decides; the other is
decided too, in shadow, on the same inputs, fraud signals and product terms, and both
are stored in `risk_decision_arm`. The deciding arm's score, policy version and limits
are the application's: its stored `model_id` and `policy_version` are that arm's, so
replay and review work unchanged. A model challenger decides under the champion's
policy version with its own model; a policy challenger under its own version. The
challenger reads the applicant's characteristics leniently (names it does not know, and
values it cannot read, are missing): they were written for the champion's card.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy.engine import Connection

from node_api.kernel.errors import CreditNetValueError
from node_api.kernel.money import Fen
from node_api.onboarding.application_input import PreparedApplication, score_leniently
from node_api.onboarding.context import OnboardingContext
from node_api.onboarding.decision import DecisionResult, compute_application_decision
from node_api.onboarding.policies import OnboardingPolicy, fetch_policy_version
from node_api.risk.challenger import Arm, ChallengerConfig, compute_bucket, get_deciding_arm
from node_api.risk.fraud_facts import FraudSignals
from node_api.risk.registry_tables import decision_arm_table
from node_api.risk.scorecard import Scorecard, ScoreResult


@dataclass(frozen=True, slots=True)
class ArmPolicy:
    """What one arm decides with."""

    policy_version: int
    policy: OnboardingPolicy
    card: Scorecard


@dataclass(frozen=True, slots=True)
class ArmDecision:
    arm: Arm
    policy_version: int
    policy: OnboardingPolicy
    score: ScoreResult
    result: DecisionResult


@dataclass(frozen=True, slots=True)
class RoutedDecision:
    """The deciding arm and, under a champion/challenger policy, the shadow arm."""

    deciding: ArmDecision
    shadow: ArmDecision | None = None
    experiment: str | None = None
    bucket: int | None = None

    def arms(self) -> list[ArmDecision]:
        return [self.deciding] if self.shadow is None else [self.deciding, self.shadow]


def fetch_challenger_policy(
    conn: Connection,
    product_code: str,
    champion: ArmPolicy,
    config: ChallengerConfig,
    context: OnboardingContext,
) -> ArmPolicy:
    """The challenger arm of the champion's policy (whose `challenger` is `config`)."""
    if config.model_version is not None:
        policy = champion.policy.model_copy(
            update={"model_version": config.model_version, "challenger": None}
        )
        card = context.cards.get_for_policy(conn, policy)
        return ArmPolicy(champion.policy_version, policy, card)
    assert config.policy_version is not None, "a challenger names a model or a policy"
    stored = fetch_policy_version(conn, product_code, config.policy_version, context.policies)
    if stored is None:
        raise CreditNetValueError(
            "the challenger names a policy version the product does not have",
            field="challenger.policy_version",
        )
    policy = stored.without_challenger()
    return ArmPolicy(config.policy_version, policy, context.cards.get_for_policy(conn, policy))


def _decide(
    arm: Arm,
    arm_policy: ArmPolicy,
    score: ScoreResult,
    prepared: PreparedApplication,
    signals: FraudSignals,
) -> ArmDecision:
    result = compute_application_decision(
        facts=prepared.facts,
        signals=signals,
        score=score,
        monthly_income_fen=Fen(prepared.inputs.monthly_income_fen),
        policy=arm_policy.policy,
        terms=prepared.terms,
        liveness=prepared.liveness,
    )
    return ArmDecision(arm, arm_policy.policy_version, arm_policy.policy, score, result)


def compute_routed_decision(
    conn: Connection,
    prepared: PreparedApplication,
    signals: FraudSignals,
    context: OnboardingContext,
) -> RoutedDecision:
    """Decide under the policy in force, and under its challenger if it has one."""
    champion_policy = ArmPolicy(prepared.policy_version, prepared.policy, prepared.card)
    champion = _decide(Arm.CHAMPION, champion_policy, prepared.score, prepared, signals)
    config = prepared.policy.challenger
    if config is None:
        return RoutedDecision(champion)
    challenger_policy = fetch_challenger_policy(
        conn, prepared.terms.product_code, champion_policy, config, context
    )
    score = score_leniently(challenger_policy.card, prepared.inputs.characteristics)
    challenger = _decide(Arm.CHALLENGER, challenger_policy, score, prepared, signals)
    bucket = compute_bucket(config.experiment, prepared.facts.identity_hash)
    if get_deciding_arm(bucket, config.share_bps) is Arm.CHALLENGER:
        return RoutedDecision(challenger, champion, config.experiment, bucket)
    return RoutedDecision(champion, challenger, config.experiment, bucket)


def insert_arms(
    conn: Connection,
    routed: RoutedDecision,
    *,
    application_id: str,
    customer_id: str,
    product_code: str,
    business_date: date,
) -> None:
    """Store both arms of a champion/challenger decision (nothing without a challenger);
    `customer_id` is the application's."""
    if routed.shadow is None or routed.experiment is None or routed.bucket is None:
        return
    rows = [
        {
            "application_id": application_id,
            "arm": arm.arm.value,
            "product_code": product_code,
            "business_date": business_date,
            "experiment": routed.experiment,
            "bucket": routed.bucket,
            "deciding": arm is routed.deciding,
            "policy_version": arm.policy_version,
            "model_id": arm.score.model_id,
            "model_version": arm.policy.model_version,
            "score": arm.score.score,
            "decision": arm.result.decision.value,
            "total_limit_fen": arm.result.limits.total_fen,
            "reason_codes": list(arm.result.reason_codes),
            "customer_id": customer_id,
        }
        for arm in routed.arms()
    ]
    conn.execute(decision_arm_table.insert(), rows)
