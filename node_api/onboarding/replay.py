"""Replay: recompute a stored decision from what was stored, and compare.

Inputs are decrypted and checked again as of the stored business date, scored with
the card the stored model id names (packaged or registered; read leniently, since a
challenger arm's card may not know every characteristic the applicant sent), hashed
into facts at the stored receipt time; the fraud rules run on the stored signals
(history has moved on since) under the stored policy version, with the liveness verdict
the application used. An application answered
with an existing customer's line replays its score only: that answer came from the
line, not from a computation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NotRequired, TypedDict

from sqlalchemy.engine import Connection

from node_api.kernel.money import Fen
from node_api.onboarding.application_input import (
    ApplicationInput,
    compute_facts,
    score_leniently,
)
from node_api.onboarding.application_store import (
    fetch_application_row,
    get_application_context,
)
from node_api.onboarding.context import OnboardingContext
from node_api.onboarding.decision import (
    ApplicationDecision,
    DecisionRecord,
    compute_application_decision,
)
from node_api.onboarding.fraud_history_sql import from_naive_utc
from node_api.onboarding.identity import verify_identity
from node_api.onboarding.liveness import fetch_verdict
from node_api.onboarding.policies import fetch_policy_version
from node_api.risk.fraud import FraudHit, FraudHitJson
from node_api.risk.fraud_facts import FraudSignals


class ReplaySideJson(TypedDict):
    """One side of a replay as answered: the decision's keys are absent for an
    application answered from an existing line (only its score is replayed)."""

    model_id: str
    score: int
    decision: NotRequired[str]
    reason_codes: NotRequired[list[str]]
    fraud_hits: NotRequired[list[FraudHitJson]]
    limits: NotRequired[dict[str, int]]


@dataclass(frozen=True, slots=True)
class ReplaySide:
    """The score and, unless answered from an existing line, the decision record."""

    model_id: str
    score: int
    record: DecisionRecord | None = None

    def to_dict(self) -> ReplaySideJson:
        side: ReplaySideJson = {"model_id": self.model_id, "score": self.score}
        record = self.record
        if record is not None:
            side["decision"] = record.decision.value
            side["reason_codes"] = list(record.reason_codes)
            side["fraud_hits"] = [hit.to_dict() for hit in record.fraud_hits]
            side["limits"] = dict(record.limits)
        return side


@dataclass(frozen=True, slots=True)
class ReplayResult:
    stored: ReplaySide
    replayed: ReplaySide

    @property
    def matches(self) -> bool:
        return self.stored == self.replayed


def replay_application(
    conn: Connection, application_id: str, context: OnboardingContext
) -> ReplayResult:
    """The stored decision next to the one recomputed from storage."""
    row = fetch_application_row(conn, application_id)
    inputs = ApplicationInput.from_json(
        context.vault.decrypt(row.inputs_enc, get_application_context(application_id))
    )
    policy = fetch_policy_version(conn, row.product_code, row.policy_version, context.policies)
    assert policy is not None, "an application's policy version is always stored"
    terms = context.products.get(conn, row.product_code, row.product_version)
    identity = verify_identity(
        name=inputs.name,
        id_number=inputs.id_number,
        phone=inputs.phone,
        as_of=row.business_date,
        age_years_min=policy.age_years_min,
        age_years_max=policy.age_years_max,
    )
    score = score_leniently(
        context.cards.get_by_model_id(row.model_id, conn), inputs.characteristics
    )
    if row.existing_customer:
        return ReplayResult(
            ReplaySide(row.model_id, row.score), ReplaySide(score.model_id, score.score)
        )
    facts = compute_facts(inputs, identity, from_naive_utc(row.applied_at), context)
    result = compute_application_decision(
        facts=facts,
        signals=FraudSignals.from_dict(row.signals),
        score=score,
        monthly_income_fen=Fen(inputs.monthly_income_fen),
        policy=policy,
        terms=terms,
        liveness=fetch_verdict(conn, application_id),
    )
    stored = DecisionRecord(
        decision=ApplicationDecision(row.decision),
        reason_codes=tuple(row.reason_codes),
        fraud_hits=tuple(FraudHit.from_dict(hit) for hit in row.fraud_hits),
        limits={path: Fen(limit_fen) for path, limit_fen in row.limits.items()},
    )
    return ReplayResult(
        ReplaySide(row.model_id, row.score, stored),
        ReplaySide(score.model_id, score.score, result.to_record()),
    )
