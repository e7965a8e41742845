"""Collections tables: strategies and their activations, cases, the contact registry,
templates, contact attempts, promises to pay and hardship plans; guarantee terms and
compensations, recoveries, and sales of charged-off debt.

Personal data only as PII-vault envelopes: a contact's phone number (`address_enc`, with
the masked form agents see in `address_masked`) and an attempt's free-text note
(`note_enc`). Everything else is ids, codes, dates and amounts in fen.

Lock order (PostgreSQL), after the idempotency key: the borrower's open cases in id
order (`FOR UPDATE`, so concurrent attempts count the day's contacts one at a time),
then new rows only (attempt, outbox, promise, plan).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from node_api.ledger.schema import fen_columns, fk_column, id_column, line_column, metadata

ACTOR_CHARS = 64
"""An actor: the API key id of whoever acted (or `system`), or an agent or agency id."""

strategy_table = Table(
    "collections_strategy",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("name", String(64), nullable=False),
    Column("document", JSON, nullable=False),
    Column("document_hash", String(80), nullable=False),
    Column("created_on", Date, nullable=False),
    Column("created_by", String(ACTOR_CHARS), nullable=False),
)
"""Strategy versions, numbered from 1; immutable once created."""

activation_table = Table(
    "collections_strategy_activation",
    metadata,
    id_column(),
    Column(
        "champion_version",
        Integer,
        ForeignKey("collections_strategy.version", name="fk_collections_activation_champion"),
        nullable=False,
    ),
    Column(
        "challenger_version",
        Integer,
        ForeignKey("collections_strategy.version", name="fk_collections_activation_challenger"),
        nullable=True,
    ),
    Column("challenger_share_bps", Integer, nullable=False),
    Column("activated_on", Date, nullable=False),
    Column("activated_by", String(ACTOR_CHARS), nullable=False),
    CheckConstraint(
        "challenger_share_bps >= 0 AND challenger_share_bps <= 10000",
        name="ck_collections_activation_share",
    ),
)
"""Which versions new cases get; the latest row is in force."""

case_table = Table(
    "collections_case",
    metadata,
    id_column(),
    line_column("fk_collections_case_line"),
    Column("customer_ref", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("opened_on", Date, nullable=False),
    Column("closed_on", Date, nullable=True),
    fk_column("activation_id", "collections_strategy_activation.id", "fk_collections_case_act"),
    Column("strategy_version", Integer, nullable=False),
    Column("arm", String(16), nullable=False),
    Column("opened_bucket", String(4), nullable=False),
    Column("bucket", String(4), nullable=False),
    Column("worst_bucket", String(4), nullable=False),
    Column("days_past_due", Integer, nullable=False),
    *fen_columns("outstanding_fen", "past_due_fen"),
    Column("score", Integer, nullable=True),
    Column("score_band", String(32), nullable=False),
    Column("queue", String(64), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("assignee", String(ACTOR_CHARS), nullable=True),
    Column("charged_off_on", Date, nullable=True),
    Column("refreshed_on", Date, nullable=False),
    UniqueConstraint("credit_line_id", "opened_on", name="uq_collections_case_line_opened"),
    # The conflict target of opening cases, led by the customer (issue #19, migration 0020).
    Index(
        "uq_collections_case_customer_line_opened",
        "customer_ref",
        "credit_line_id",
        "opened_on",
        unique=True,
    ),
    Index("ix_collections_case_status_queue", "status", "queue"),
    Index("ix_collections_case_customer", "customer_ref", "status"),
)
"""One row per delinquency episode of a line: opened when it goes past due, cured when it
is current again. Its strategy version and arm are fixed at opening."""

contact_table = Table(
    "collections_contact",
    metadata,
    line_column("fk_collections_contact_line"),
    Column("party", String(24), nullable=False),
    Column("address_enc", LargeBinary, nullable=False),
    Column("address_masked", String(32), nullable=False),
    Column("registered_on", Date, nullable=False),
    Column("registered_by", String(ACTOR_CHARS), nullable=False),
    PrimaryKeyConstraint("credit_line_id", "party", name="pk_collections_contact"),
    Column("customer_id", String(64), nullable=True),
)
"""The contact registry: the borrower's and the emergency contact's phone per line."""

template_table = Table(
    "collections_template",
    metadata,
    id_column(),
    Column("code", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("channel", String(16), nullable=False),
    Column("party", String(24), nullable=False),
    Column("body", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_on", Date, nullable=False),
    Column("created_by", String(ACTOR_CHARS), nullable=False),
    Column("approved_on", Date, nullable=True),
    Column("approved_by", String(ACTOR_CHARS), nullable=True),
    UniqueConstraint("code", "version", name="uq_collections_template_code_version"),
)
"""Message templates; only an approved one may be sent."""

attempt_table = Table(
    "collections_contact_attempt",
    metadata,
    id_column(),
    fk_column("case_id", "collections_case.id", "fk_collections_attempt_case", index=True),
    Column("credit_line_id", BigInteger, nullable=False),
    Column("customer_ref", String(64), nullable=False),
    Column("party", String(24), nullable=False),
    Column("channel", String(16), nullable=False),
    fk_column(
        "template_id", "collections_template.id", "fk_collections_attempt_template", nullable=True
    ),
    Column("contacted_at", DateTime, nullable=False),
    Column("local_date", Date, nullable=False),
    Column("outcome", String(24), nullable=False),
    Column("note_enc", LargeBinary, nullable=True),
    Column("agent", String(ACTOR_CHARS), nullable=False),
    Column("delivery", String(16), nullable=True),
    Column("provider_ref", String(80), nullable=True),
    Index("ix_collections_attempt_customer_day", "customer_ref", "local_date"),
)
"""Every contact attempt with its outcome; `contacted_at` is naive UTC and `local_date`
its day in the conduct policy's time zone (the daily limit counts by it)."""

promise_table = Table(
    "collections_promise",
    metadata,
    id_column(),
    fk_column("case_id", "collections_case.id", "fk_collections_promise_case", index=True),
    Column("credit_line_id", BigInteger, nullable=False),
    *fen_columns("amount_fen", "paid_fen"),
    Column("promised_on", Date, nullable=False),
    Column("due_on", Date, nullable=False),
    Column("status", String(16), nullable=False),
    Column("evaluated_on", Date, nullable=True),
    fk_column(
        "attempt_id",
        "collections_contact_attempt.id",
        "fk_collections_promise_attempt",
        nullable=True,
    ),
    Column("recorded_by", String(ACTOR_CHARS), nullable=False),
    CheckConstraint("amount_fen > 0", name="ck_collections_promise_amount"),
    Index("ix_collections_promise_status", "status"),
    Column("customer_id", String(64), nullable=True),
)
"""Promises to pay: pending until the paid amount reaches them (kept) or their due date
passes (broken)."""

plan_table = Table(
    "collections_hardship_plan",
    metadata,
    id_column(),
    fk_column("case_id", "collections_case.id", "fk_collections_plan_case", index=True),
    Column("credit_line_id", BigInteger, nullable=False),
    Column("kind", String(24), nullable=False),
    *fen_columns("principal_fen", "fee_fen"),
    Column("term_months", Integer, nullable=False),
    Column("rate_bps", Integer, nullable=False),
    Column("effective_annual_bps", Integer, nullable=False),
    Column("reason_code", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("requested_on", Date, nullable=False),
    Column("requested_by", String(ACTOR_CHARS), nullable=False),
    Column("decided_on", Date, nullable=True),
    Column("decided_by", String(ACTOR_CHARS), nullable=True),
    Column("decision_reason", String(64), nullable=True),
    Index("ix_collections_plan_line_status", "credit_line_id", "status"),
    Column("customer_id", String(64), nullable=True),
)
"""Hardship plans and their approval. Booking an approved re-aged plan is lending's."""

GUARANTOR_REF_CHARS = 64
"""A partner ref (the settlement partner's `ref`): an organisation, never a person."""

compensation_terms_table = Table(
    "collections_compensation_terms",
    metadata,
    Column("product_code", String(32), primary_key=True),
    Column("guarantor_ref", String(GUARANTOR_REF_CHARS), nullable=False),
    Column("coverage", String(16), nullable=False),
    Column("set_on", Date, nullable=False),
    Column("set_by", String(ACTOR_CHARS), nullable=False),
)
"""The guarantee agreement of a product's lines: which guarantor compensates them and
whether it pays the overdue amounts or the whole balance. Replaced, never versioned:
compensations already made keep the terms they were made under."""

compensation_table = Table(
    "collections_compensation",
    metadata,
    id_column(),
    line_column("fk_collections_compensation_line", index=True),
    Column("product_code", String(32), nullable=False),
    Column("guarantor_ref", String(GUARANTOR_REF_CHARS), nullable=False),
    Column("coverage", String(16), nullable=False),
    Column("days_past_due", Integer, nullable=False),
    *fen_columns("amount_fen"),
    Column("repayment_id", BigInteger, nullable=False),
    Column("batch_id", BigInteger, nullable=False),
    Column("as_of", Date, nullable=False),
    Column("agreement_change_seq", Integer, nullable=True),
    Column("recorded_by", String(ACTOR_CHARS), nullable=False),
    CheckConstraint("amount_fen > 0", name="ck_collections_compensation_amount"),
    UniqueConstraint("credit_line_id", "as_of", name="uq_collections_compensation_line_day"),
    Column("customer_id", String(64), nullable=True),
)
"""Guarantor compensations (代偿): the repayment the guarantor's money was posted as, the
batch recording its subrogated claim, and the agreement change sent to the chain."""

recovery_table = Table(
    "collections_recovery",
    metadata,
    id_column(),
    line_column("fk_collections_recovery_line", index=True),
    Column("seq", Integer, nullable=False),
    *fen_columns("amount_fen", "guarantor_fen", "shared_fen"),
    Column("guarantor_ref", String(GUARANTOR_REF_CHARS), nullable=True),
    Column("payment_ref", String(64), nullable=True),
    Column("batch_id", BigInteger, nullable=False),
    Column("as_of", Date, nullable=False),
    Column("recorded_by", String(ACTOR_CHARS), nullable=False),
    CheckConstraint(
        "amount_fen > 0 AND guarantor_fen >= 0 AND shared_fen >= 0 "
        "AND amount_fen = guarantor_fen + shared_fen",
        name="ck_collections_recovery_parts",
    ),
    UniqueConstraint("credit_line_id", "seq", name="uq_collections_recovery_line_seq"),
    Column("customer_id", String(64), nullable=True),
)
"""Money collected after a charge-off or a compensation: the part paid back to the
guarantor first, and the part shared by the funders' funded shares."""

debt_sale_table = Table(
    "collections_debt_sale",
    metadata,
    id_column(),
    Column("buyer_ref", String(GUARANTOR_REF_CHARS), nullable=False),
    *fen_columns("face_fen", "price_fen"),
    Column("as_of", Date, nullable=False),
    Column("recorded_by", String(ACTOR_CHARS), nullable=False),
    CheckConstraint("price_fen > 0 AND price_fen <= face_fen", name="ck_collections_sale_price"),
)
"""Portfolios of charged-off lines sold to a collection agency, at a price."""

debt_sale_line_table = Table(
    "collections_debt_sale_line",
    metadata,
    fk_column("sale_id", "collections_debt_sale.id", "fk_collections_sale_line_sale"),
    line_column("fk_collections_sale_line_line"),
    *fen_columns("face_fen", "price_fen"),
    Column("batch_id", BigInteger, nullable=True),
    PrimaryKeyConstraint("credit_line_id", name="pk_collections_debt_sale_line"),
    Column("customer_id", String(64), nullable=True),
)
"""Each sold line (once: a line is sold at most once), its face value and its part of the
price (by face value, largest remainder; no batch when its part rounds to zero)."""
