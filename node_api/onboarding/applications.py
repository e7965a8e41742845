"""The application decision flow, in the caller's one transaction.

identity and input checks (and the liveness result's signature) -> the liveness nonce
taken for this application -> dedupe by the keyed hash of the identity number (an
existing customer with an open line gets that line back) -> fraud signals from SQL
history -> score -> product policy (and its challenger, if it runs one: `arms.py`) -> limits
at every level -> open the line and enqueue the agreement -> store the decision with
its encrypted inputs, its history rows, its live-monitoring counts (one statement on
PostgreSQL: `decision_rows.py`) and both arms of a champion/challenger test. Either all
of it commits or none.

`applied_at` (wall-clock receipt time, for the velocity windows) and the business
date (age, opening date) are explicit inputs; nothing here reads a clock except
the phase timer, which only measures durations for the Server-Timing header.
"""

from __future__ import annotations

import functools
import json
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from node_api.kernel.money import Fen
from node_api.ledger.sql import Row, begin_write
from node_api.lending.lines import LineStatus, credit_line_table, fetch_line
from node_api.onboarding.agreements import AgreementRows, open_line_with_agreement
from node_api.onboarding.application_input import (
    ApplicationInput,
    PreparedApplication,
    prepare_application,
)
from node_api.onboarding.application_store import (
    StoredApplication,
    fetch_agreement_of_line,
    get_application_context,
    get_customer_context,
)
from node_api.onboarding.arms import (
    ArmDecision,
    RoutedDecision,
    compute_routed_decision,
    insert_arms,
)
from node_api.onboarding.context import OnboardingContext
from node_api.onboarding.decision import ApplicationDecision, DecisionRecord
from node_api.onboarding.decision_rows import insert_decision_rows
from node_api.onboarding.fraud_history_sql import SqlFraudHistory
from node_api.onboarding.liveness import LivenessTrust, SignedLivenessResult, consume_challenge
from node_api.onboarding.provenance import DecisionProvenance, compute_decision_inputs
from node_api.onboarding.tables import customer_table
from node_api.risk.fraud import FraudHit
from node_api.risk.fraud_facts import FraudSignals, gather_signals
from node_api.risk.scorecard import ReasonCode, ScoreResult

EXISTING_CUSTOMER = "EXISTING_CUSTOMER"
IdSource = Callable[[], str]


def new_public_id() -> str:
    """128 random bits as 32 hex characters (customer and application ids)."""
    return secrets.token_hex(16)


@dataclass
class PhaseTimer:
    """Milliseconds spent in each phase of one decision (for Server-Timing, not business)."""

    phases_ms: dict[str, float] = field(default_factory=dict)
    _started: float = field(default_factory=time.perf_counter)

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.phases_ms[phase] = (now - self._started) * 1000.0
        self._started = now


@dataclass(frozen=True, slots=True)
class ApplicationAnswer:
    """What the applicant's channel is told: no PII, only ids, codes and amounts."""

    application_id: str
    decision: ApplicationDecision
    reason_codes: tuple[str, ...]
    score: int
    model_id: str
    score_reasons: tuple[ReasonCode, ...]
    fraud_hits: tuple[FraudHit, ...]
    limits: Mapping[str, Fen]
    """Limit per level of the line, keyed by path (`total`, `total/purchase`, ...)."""
    credit_line_id: int | None
    agreement_id: str | None
    existing_customer: bool
    product_code: str
    product_version: int


@dataclass(frozen=True, slots=True)
class ApplicationOutcome:
    """The stored application and where the time went."""

    stored: StoredApplication
    timer: PhaseTimer

    def answer(self) -> ApplicationAnswer:
        stored = self.stored
        return ApplicationAnswer(
            application_id=stored.id,
            decision=stored.decision,
            reason_codes=stored.record.reason_codes,
            score=stored.score.score,
            model_id=stored.score.model_id,
            score_reasons=stored.score.reasons,
            fraud_hits=stored.record.fraud_hits,
            limits=stored.record.limits,
            credit_line_id=stored.credit_line_id,
            agreement_id=stored.agreement_id,
            existing_customer=stored.existing_customer,
            product_code=stored.product_code,
            product_version=stored.product_version,
        )


@functools.cache
def _claim_statement(dialect_name: str) -> Any:
    """INSERT ... ON CONFLICT (id_number_hash) DO NOTHING RETURNING id, built once."""
    insert: Any = (postgresql if dialect_name == "postgresql" else sqlite).insert(customer_table)
    return insert.on_conflict_do_nothing(index_elements=["id_number_hash"]).returning(
        customer_table.c.id
    )


def claim_customer(
    conn: Connection, prepared: PreparedApplication, context: OnboardingContext, new_id: IdSource
) -> tuple[str, bool]:
    """The customer of this identity, created if new, and locked; (id, already known)."""
    table = customer_table
    identity_hash = prepared.facts.identity_hash
    customer_id = new_id()
    identity = prepared.identity
    pii = json.dumps(
        {
            "name": identity.name,
            "id_number": identity.resident_id.number,
            "phone": identity.mobile_e164,
        },
        ensure_ascii=False,
    )
    row = {
        "id": customer_id,
        "id_number_hash": identity_hash,
        "pii_enc": context.vault.encrypt(pii, get_customer_context(customer_id)),
        "created_on": prepared.as_of,
    }
    if conn.execute(_claim_statement(conn.dialect.name), row).first() is not None:
        return customer_id, False
    existing = conn.execute(
        select(table.c.id).where(table.c.id_number_hash == identity_hash).with_for_update()
    ).scalar_one()
    return str(existing), True


def fetch_open_line_id(conn: Connection, customer_id: str) -> int | None:
    lines = credit_line_table
    line_id = conn.execute(
        select(lines.c.id).where(
            (lines.c.customer_ref == customer_id) & (lines.c.status != LineStatus.CLOSED.value)
        )
    ).scalar_one_or_none()
    return None if line_id is None else int(line_id)


def _store(
    prepared: PreparedApplication,
    *,
    application_id: str,
    customer_id: str,
    context: OnboardingContext,
    signals: FraudSignals | None,
    record: DecisionRecord,
    decided_by: ArmDecision | None,
    line: tuple[int | None, str | None],
    inputs_json: str,
) -> StoredApplication:
    """The row of an application: the deciding arm's score and policy version, if any
    arm decided (none did for an existing customer: the answer came from the line)."""
    inputs = prepared.inputs
    return StoredApplication(
        id=application_id,
        customer_id=customer_id,
        product_code=prepared.terms.product_code,
        product_version=prepared.terms.version,
        policy_version=prepared.policy_version if decided_by is None else decided_by.policy_version,
        channel_id=inputs.channel_id,
        applied_at=prepared.facts.applied_at,
        business_date=prepared.as_of,
        inputs_enc=context.vault.encrypt(inputs_json, get_application_context(application_id)),
        score=prepared.score if decided_by is None else decided_by.score,
        signals=signals,
        record=record,
        existing_customer=decided_by is None,
        credit_line_id=line[0],
        agreement_id=line[1],
    )


def _existing_customer_decision(conn: Connection, line_id: int) -> DecisionRecord:
    line = fetch_line(conn, line_id)
    limits = {node.path: Fen(node.limit_fen) for node in line.nodes}
    return DecisionRecord(ApplicationDecision.APPROVED, (EXISTING_CUSTOMER,), (), limits)


def _decide_new(
    conn: Connection, prepared: PreparedApplication, context: OnboardingContext
) -> tuple[FraudSignals, RoutedDecision]:
    """Fraud signals from history, then the decision of every arm of the policy."""
    config = prepared.policy.fraud
    history = SqlFraudHistory(conn, context.rings)
    history.preload(prepared.facts, config)
    signals = gather_signals(prepared.facts, history, config)
    return signals, compute_routed_decision(conn, prepared, signals, context)


def decide_application(
    conn: Connection,
    inputs: ApplicationInput,
    *,
    as_of: date,
    applied_at: datetime,
    context: OnboardingContext,
    new_id: IdSource = new_public_id,
    liveness: SignedLivenessResult | None = None,
    liveness_trust: LivenessTrust | None = None,
    respond: Callable[[ApplicationAnswer], Sequence[Row]] | None = None,
) -> ApplicationOutcome:
    """Decide one application and store everything about it (module docstring).

    `respond`, if given, renders the answer as the rows of the request's stored response
    (`idempotency.ResponseAlong.rows`), which are written with the decision's own."""
    timer = PhaseTimer()
    begin_write(conn)
    prepared = prepare_application(
        conn,
        inputs,
        as_of=as_of,
        applied_at=applied_at,
        context=context,
        liveness=liveness,
        liveness_trust=liveness_trust,
    )
    timer.lap("prepare")
    application_id = new_id()
    inputs_json = inputs.to_json()
    if prepared.liveness is not None:
        assert prepared.liveness_result_sha256 is not None
        consume_challenge(
            conn,
            prepared.liveness,
            prepared.liveness_result_sha256,
            application_id=application_id,
            at=applied_at,
        )
    customer_id, known = claim_customer(conn, prepared, context, new_id)
    existing_line_id = fetch_open_line_id(conn, customer_id) if known else None
    timer.lap("dedupe")
    line: tuple[int | None, str | None] = (None, None)
    agreement_rows = AgreementRows()
    signals: FraudSignals | None = None
    routed: RoutedDecision | None = None
    if existing_line_id is not None:
        record = _existing_customer_decision(conn, existing_line_id)
        line = (existing_line_id, fetch_agreement_of_line(conn, existing_line_id))
    else:
        signals, routed = _decide_new(conn, prepared, context)
        deciding = routed.deciding
        record = deciding.result.to_record()
        timer.lap("fraud")
        if deciding.result.decision is ApplicationDecision.APPROVED:
            line = open_line_with_agreement(
                conn,
                application_id=application_id,
                customer_id=customer_id,
                limits=deciding.result.limits,
                terms=prepared.terms,
                policy=deciding.policy,
                as_of=as_of,
                context=context,
                provenance=DecisionProvenance(
                    model_id=deciding.score.model_id,
                    model_version=deciding.policy.model_version,
                    policy_version=deciding.policy_version,
                    arm=deciding.arm.value,
                    decided_at=applied_at,
                    decision_inputs=compute_decision_inputs(
                        inputs_json, prepared.liveness_result_sha256
                    ),
                ),
                deferred=agreement_rows,
            )
            timer.lap("line")
    stored = _store(
        prepared,
        application_id=application_id,
        customer_id=customer_id,
        context=context,
        signals=signals,
        record=record,
        decided_by=None if routed is None else routed.deciding,
        line=line,
        inputs_json=inputs_json,
    )
    outcome = ApplicationOutcome(stored, timer)
    insert_decision_rows(
        conn,
        stored,
        prepared.facts,
        prepared.policy.fraud,
        _scores(prepared, routed),
        agreement_rows,
        () if respond is None else respond(outcome.answer()),
    )
    if routed is not None:
        insert_arms(
            conn,
            routed,
            application_id=application_id,
            customer_id=customer_id,
            product_code=prepared.terms.product_code,
            business_date=prepared.as_of,
        )
    timer.lap("store")
    return outcome


def _scores(prepared: PreparedApplication, routed: RoutedDecision | None) -> list[ScoreResult]:
    """The score of every model that scored the application, in model id order (each
    counts once in live monitoring)."""
    if routed is None:
        return [prepared.score]
    scores = {arm.score.model_id: arm.score for arm in routed.arms()}
    return [scores[model_id] for model_id in sorted(scores)]
