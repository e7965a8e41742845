"""Decision simulation: what a candidate policy would have decided on past applications.

Each application of the product decided in the date range (by business date, both
ends included) is replayed from what was stored, inside the node: its inputs are
decrypted, checked again under the candidate's age window as of the stored business
date (a failure declines), scored by the candidate's card or model (leniently: the
inputs were written for the card of their day), and decided by the candidate's rules on
the stored fraud signals, under the stored product version's terms. The old side is the
stored automatic decision (before any review). Applications answered from an existing
customer's line are left out: no rule decided them.

The answer is the swap set (approved by both, by the old side only, by the new side
only, by neither), each side's approval rate, its expected bad rate from the scores
(`risk.decision_stats`) and its limit totals. Nothing is written: the caller's
transaction only reads.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Row

from node_api.kernel.errors import CreditNetValueError
from node_api.kernel.money import FEN_ZERO, Fen
from node_api.lending.limits import ROOT_PATH
from node_api.onboarding.application_input import (
    ApplicationInput,
    compute_facts,
    score_leniently,
)
from node_api.onboarding.application_store import get_application_context
from node_api.onboarding.context import OnboardingContext
from node_api.onboarding.decision import ApplicationDecision, compute_application_decision
from node_api.onboarding.fraud_history_sql import from_naive_utc
from node_api.onboarding.identity import verify_identity
from node_api.onboarding.liveness import fetch_verdict
from node_api.onboarding.model_activation import check_policy_references
from node_api.onboarding.policies import OnboardingPolicy, fetch_policy_version
from node_api.onboarding.tables import application_table
from node_api.risk.decision_stats import (
    Outcome,
    SwapSetSummary,
    compute_bad_probability,
    summarize_swap_set,
)
from node_api.risk.fraud_facts import FraudSignals
from node_api.risk.scorecard import Scorecard

SIMULATION_APPLICATIONS_MAX = 20_000
"""The most applications one API simulation replays (the CLI has no such bound)."""


@dataclass(frozen=True, slots=True)
class SimulationReport:
    product_code: str
    from_date: date
    to_date: date
    candidate_model_id: str
    skipped_existing_customers: int
    summary: SwapSetSummary

    def to_dict(self) -> dict[str, Any]:
        """The report as answered and printed (dates ISO, cells by name)."""
        summary = self.summary
        return {
            "product_code": self.product_code,
            "from_date": self.from_date.isoformat(),
            "to_date": self.to_date.isoformat(),
            "candidate_model_id": self.candidate_model_id,
            "applications": summary.applications,
            "skipped_existing_customers": self.skipped_existing_customers,
            "swap_set": {cell.value: asdict(item) for cell, item in summary.cells.items()},
            "old": asdict(summary.old),
            "new": asdict(summary.new),
        }


def fetch_candidate_policy(
    conn: Connection,
    product_code: str,
    policy: OnboardingPolicy | None,
    policy_version: int | None,
    context: OnboardingContext,
) -> OnboardingPolicy:
    """The candidate of a simulation: a policy document (checked like a published one)
    or a stored version of the product's policy."""
    if policy is not None:
        check_policy_references(conn, product_code, policy, context)
        return policy
    if policy_version is None:
        raise CreditNetValueError("name a candidate policy or policy version", field="policy")
    stored = fetch_policy_version(conn, product_code, policy_version, context.policies)
    if stored is None:
        raise CreditNetValueError(
            "the product has no policy version with this number", field="policy_version"
        )
    return stored


def _outcome(decision: ApplicationDecision, total_limit_fen: Fen, probability: float) -> Outcome:
    approved = decision is ApplicationDecision.APPROVED
    in_review = decision is ApplicationDecision.REVIEW
    limit_fen = Fen(total_limit_fen if approved or in_review else 0)
    return Outcome(approved, in_review, limit_fen, probability)


def _stored_outcome(conn: Connection, row: Row[Any], context: OnboardingContext) -> Outcome:
    card = context.cards.get_by_model_id(row.model_id, conn)
    probability = compute_bad_probability(card.card.scaling, int(row.score))
    limit_fen = Fen(int(row.limits[ROOT_PATH]))
    return _outcome(ApplicationDecision(row.decision), limit_fen, probability)


def _candidate_outcome(
    conn: Connection,
    row: Row[Any],
    candidate: OnboardingPolicy,
    card: Scorecard,
    context: OnboardingContext,
) -> Outcome:
    inputs = ApplicationInput.from_json(
        context.vault.decrypt(row.inputs_enc, get_application_context(row.id))
    )
    score = score_leniently(card, inputs.characteristics)
    probability = compute_bad_probability(card.card.scaling, score.score)
    try:
        identity = verify_identity(
            name=inputs.name,
            id_number=inputs.id_number,
            phone=inputs.phone,
            as_of=row.business_date,
            age_years_min=candidate.age_years_min,
            age_years_max=candidate.age_years_max,
        )
    except CreditNetValueError:
        return _outcome(ApplicationDecision.DECLINED, FEN_ZERO, probability)
    result = compute_application_decision(
        facts=compute_facts(inputs, identity, from_naive_utc(row.applied_at), context),
        signals=FraudSignals.from_dict(row.signals),
        score=score,
        monthly_income_fen=Fen(inputs.monthly_income_fen),
        policy=candidate,
        terms=context.products.get(conn, row.product_code, row.product_version),
        liveness=fetch_verdict(conn, str(row.id)) if candidate.liveness is not None else None,
    )
    return _outcome(result.decision, result.limits.total_fen, probability)


def _in_range(product_code: str, from_date: date, to_date: date) -> Any:
    table = application_table
    return (
        (table.c.product_code == product_code)
        & (table.c.business_date >= from_date)
        & (table.c.business_date <= to_date)
    )


def simulate_policy(
    conn: Connection,
    product_code: str,
    candidate: OnboardingPolicy,
    *,
    from_date: date,
    to_date: date,
    context: OnboardingContext,
    applications_max: int | None = None,
) -> SimulationReport:
    """Replay the product's applications of the date range under `candidate`."""
    if from_date > to_date:
        raise CreditNetValueError("from_date must not be after to_date", field="from_date")
    table = application_table
    in_range = _in_range(product_code, from_date, to_date)
    existing = conn.execute(
        select(func.count()).where(in_range & table.c.existing_customer)
    ).scalar_one()
    statement = (
        select(table)
        .where(in_range & table.c.existing_customer.is_(False))
        .order_by(table.c.applied_at, table.c.id)
    )
    if applications_max is not None:
        count = conn.execute(select(func.count()).select_from(statement.subquery())).scalar_one()
        if count > applications_max:
            raise CreditNetValueError(
                f"the range holds more than {applications_max} applications: narrow it",
                field="to_date",
                code="simulation_too_large",
            )
    policy = candidate.without_challenger()
    card = context.cards.get_for_policy(conn, policy)
    pairs = [
        (_stored_outcome(conn, row, context), _candidate_outcome(conn, row, policy, card, context))
        for row in conn.execute(statement).all()
    ]
    return SimulationReport(
        product_code=product_code,
        from_date=from_date,
        to_date=to_date,
        candidate_model_id=card.model_id,
        skipped_existing_customers=int(existing),
        summary=summarize_swap_set(pairs),
    )
