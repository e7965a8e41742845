"""Stored applications: the row written with each decision, and views without PII.

A row keeps the inputs as one vault envelope (context `application:<id>`) and,
in plain JSON, everything else a reviewer or an auditor needs: the fraud signals
and hits, the score with its bins and reasons, the decision and limits, the
policy version and the model id. Replay reads exactly these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypedDict

from sqlalchemy import select, update
from sqlalchemy.engine import Connection, Row

from node_api.kernel.errors import NotFoundError
from node_api.kernel.money import Fen
from node_api.onboarding.decision import ApplicationDecision, DecisionRecord
from node_api.onboarding.fraud_history_sql import from_naive_utc, to_naive_utc
from node_api.onboarding.tables import application_table
from node_api.risk.fraud import FraudHit
from node_api.risk.fraud_facts import FraudSignals, FraudSignalsJson
from node_api.risk.scorecard import ScoreResult


def get_application_context(application_id: str) -> str:
    """The vault context of an application's inputs."""
    return f"application:{application_id}"


def get_customer_context(customer_id: str) -> str:
    return f"customer:{customer_id}"


class ScoreReasonJson(TypedDict):
    code: str
    characteristic: str
    text: str
    points_lost: float


class ScoreDetailJson(TypedDict):
    """The score as stored with the decision (JSON) and shown to reviewers."""

    score_exact: float
    score_band: int
    bin_indices: dict[str, int]
    missing: list[str]
    reasons: list[ScoreReasonJson]


class NoSignalsJson(TypedDict):
    """The signals stored for an application answered from an existing line: `{}`."""


def compute_score_detail(score: ScoreResult) -> ScoreDetailJson:
    """The score as stored and shown: exact sum, bins, missing values, reasons."""
    return {
        "score_exact": score.score_exact,
        "score_band": score.score_band,
        "bin_indices": dict(score.bin_indices),
        "missing": list(score.missing),
        "reasons": [
            {
                "code": reason.code,
                "characteristic": reason.characteristic,
                "text": reason.text,
                "points_lost": reason.points_lost,
            }
            for reason in score.reasons
        ],
    }


@dataclass(frozen=True, slots=True)
class StoredApplication:
    """One application row as the flow writes it (the PII only as `inputs_enc`)."""

    id: str
    customer_id: str
    product_code: str
    product_version: int
    policy_version: int
    channel_id: str
    applied_at: datetime
    business_date: date
    inputs_enc: bytes
    score: ScoreResult
    signals: FraudSignals | None
    """None when the application was answered from an existing customer's line."""
    record: DecisionRecord
    existing_customer: bool
    credit_line_id: int | None
    agreement_id: str | None

    @property
    def decision(self) -> ApplicationDecision:
        return self.record.decision


_INSERT_APPLICATION = application_table.insert()


def insert_application(conn: Connection, stored: StoredApplication) -> None:
    conn.execute(_INSERT_APPLICATION, compute_application_row(stored))


def compute_application_row(stored: StoredApplication) -> dict[str, Any]:
    """The `loan_application` row of a stored application, keyed by column."""
    return dict(
        id=stored.id,
        customer_id=stored.customer_id,
        product_code=stored.product_code,
        product_version=stored.product_version,
        policy_version=stored.policy_version,
        channel_id=stored.channel_id,
        applied_at=to_naive_utc(stored.applied_at),
        business_date=stored.business_date,
        inputs_enc=stored.inputs_enc,
        model_id=stored.score.model_id,
        score=stored.score.score,
        score_detail=compute_score_detail(stored.score),
        signals=NoSignalsJson() if stored.signals is None else stored.signals.to_dict(),
        fraud_hits=[hit.to_dict() for hit in stored.record.fraud_hits],
        decision=stored.decision.value,
        reason_codes=list(stored.record.reason_codes),
        limits=dict(stored.record.limits),
        existing_customer=stored.existing_customer,
        status=stored.decision.value,
        credit_line_id=stored.credit_line_id,
        agreement_id=stored.agreement_id,
    )


def fetch_application_row(conn: Connection, application_id: str, *, lock: bool = False) -> Row[Any]:
    """The row of an application (locked FOR UPDATE with `lock`); 404 if absent."""
    statement = select(application_table).where(application_table.c.id == application_id)
    if lock:
        statement = statement.with_for_update()
    row = conn.execute(statement).first()
    if row is None:
        raise NotFoundError("no application has this id", field="application_id")
    return row


def fetch_agreement_of_line(conn: Connection, credit_line_id: int) -> str | None:
    """The agreement id anchored for a line (set by the application that opened it)."""
    table = application_table
    return conn.execute(
        select(table.c.agreement_id)
        .where((table.c.credit_line_id == credit_line_id) & table.c.agreement_id.is_not(None))
        .limit(1)
    ).scalar_one_or_none()


def store_review(
    conn: Connection,
    application_id: str,
    *,
    status: ApplicationDecision,
    reason_code: str,
    reviewer_key_id: str,
    reviewed_at: datetime,
    credit_line_id: int | None,
    agreement_id: str | None,
) -> None:
    conn.execute(
        update(application_table)
        .where(application_table.c.id == application_id)
        .values(
            status=status.value,
            review_action="approve" if status is ApplicationDecision.APPROVED else "decline",
            review_reason=reason_code,
            reviewer_key_id=reviewer_key_id,
            reviewed_at=to_naive_utc(reviewed_at),
            credit_line_id=credit_line_id,
            agreement_id=agreement_id,
        )
    )


@dataclass(frozen=True, slots=True)
class ReviewView:
    action: str
    reason_code: str
    reviewer_key_id: str
    reviewed_at: str
    """ISO 8601 with the UTC offset."""


@dataclass(frozen=True, slots=True)
class ApplicationView:
    """Everything about a stored decision except personal data (the inputs stay
    encrypted). Times and dates are ISO 8601 strings, as answered."""

    application_id: str
    customer_id: str
    channel_id: str
    product_code: str
    product_version: int
    policy_version: int
    applied_at: str
    business_date: str
    model_id: str
    score: int
    score_detail: ScoreDetailJson
    fraud_signals: FraudSignalsJson | NoSignalsJson
    fraud_hits: tuple[FraudHit, ...]
    decision: ApplicationDecision
    reason_codes: tuple[str, ...]
    limits: Mapping[str, Fen]
    existing_customer: bool
    credit_line_id: int | None
    agreement_id: str | None
    status: ApplicationDecision
    """The decision, or the reviewer's when the application was reviewed."""
    review: ReviewView | None


def application_view(row: Row[Any]) -> ApplicationView:
    """The view of a stored application row."""
    review = None
    if row.review_action is not None:
        review = ReviewView(
            action=row.review_action,
            reason_code=row.review_reason,
            reviewer_key_id=row.reviewer_key_id,
            reviewed_at=from_naive_utc(row.reviewed_at).isoformat(),
        )
    return ApplicationView(
        application_id=row.id,
        customer_id=row.customer_id,
        status=ApplicationDecision(row.status),
        decision=ApplicationDecision(row.decision),
        reason_codes=tuple(row.reason_codes),
        score=row.score,
        model_id=row.model_id,
        score_detail=row.score_detail,
        fraud_signals=row.signals,
        fraud_hits=tuple(FraudHit.from_dict(hit) for hit in row.fraud_hits),
        limits={path: Fen(limit_fen) for path, limit_fen in row.limits.items()},
        existing_customer=bool(row.existing_customer),
        credit_line_id=row.credit_line_id,
        agreement_id=row.agreement_id,
        product_code=row.product_code,
        product_version=row.product_version,
        policy_version=row.policy_version,
        channel_id=row.channel_id,
        applied_at=from_naive_utc(row.applied_at).isoformat(),
        business_date=row.business_date.isoformat(),
        review=review,
    )
