"""Collections: strategy versions and activations, cases, the contact registry, message
templates, contact attempts, promises to pay and hardship plans.

Revision ID: 0010_collections
Revises: 0009_risk_models

Hand-written for SQLite and PostgreSQL alike; see `node_api/collections/tables.py` for
what each table and column means.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_collections"
down_revision = "0009_risk_models"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ACTOR = 64


def _id() -> sa.Column[int]:
    return sa.Column("id", ID, primary_key=True, autoincrement=True)


def _fk(name: str, target: str, constraint: str, *, nullable: bool = False) -> sa.Column[int]:
    return sa.Column(
        name, sa.BigInteger(), sa.ForeignKey(target, name=constraint), nullable=nullable
    )


def _fen(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger(), nullable=False)


def upgrade() -> None:
    _strategies()
    _cases()
    _contacts_and_templates()
    _attempts()
    _promises_and_plans()


def _strategies() -> None:
    op.create_table(
        "collections_strategy",
        sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("document_hash", sa.String(80), nullable=False),
        sa.Column("created_on", sa.Date(), nullable=False),
        sa.Column("created_by", sa.String(ACTOR), nullable=False),
    )
    op.create_table(
        "collections_strategy_activation",
        _id(),
        sa.Column(
            "champion_version",
            sa.Integer(),
            sa.ForeignKey(
                "collections_strategy.version", name="fk_collections_activation_champion"
            ),
            nullable=False,
        ),
        sa.Column(
            "challenger_version",
            sa.Integer(),
            sa.ForeignKey(
                "collections_strategy.version", name="fk_collections_activation_challenger"
            ),
            nullable=True,
        ),
        sa.Column("challenger_share_bps", sa.Integer(), nullable=False),
        sa.Column("activated_on", sa.Date(), nullable=False),
        sa.Column("activated_by", sa.String(ACTOR), nullable=False),
        sa.CheckConstraint(
            "challenger_share_bps >= 0 AND challenger_share_bps <= 10000",
            name="ck_collections_activation_share",
        ),
    )


def _cases() -> None:
    op.create_table(
        "collections_case",
        _id(),
        _fk("credit_line_id", "credit_line.id", "fk_collections_case_line"),
        sa.Column("customer_ref", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("opened_on", sa.Date(), nullable=False),
        sa.Column("closed_on", sa.Date(), nullable=True),
        _fk("activation_id", "collections_strategy_activation.id", "fk_collections_case_act"),
        sa.Column("strategy_version", sa.Integer(), nullable=False),
        sa.Column("arm", sa.String(16), nullable=False),
        sa.Column("opened_bucket", sa.String(4), nullable=False),
        sa.Column("bucket", sa.String(4), nullable=False),
        sa.Column("worst_bucket", sa.String(4), nullable=False),
        sa.Column("days_past_due", sa.Integer(), nullable=False),
        _fen("outstanding_fen"),
        _fen("past_due_fen"),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("score_band", sa.String(32), nullable=False),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("assignee", sa.String(ACTOR), nullable=True),
        sa.Column("charged_off_on", sa.Date(), nullable=True),
        sa.Column("refreshed_on", sa.Date(), nullable=False),
        sa.UniqueConstraint("credit_line_id", "opened_on", name="uq_collections_case_line_opened"),
    )
    op.create_index("ix_collections_case_status_queue", "collections_case", ["status", "queue"])
    op.create_index("ix_collections_case_customer", "collections_case", ["customer_ref", "status"])


def _contacts_and_templates() -> None:
    op.create_table(
        "collections_contact",
        _fk("credit_line_id", "credit_line.id", "fk_collections_contact_line"),
        sa.Column("party", sa.String(24), nullable=False),
        sa.Column("address_enc", sa.LargeBinary(), nullable=False),
        sa.Column("address_masked", sa.String(32), nullable=False),
        sa.Column("registered_on", sa.Date(), nullable=False),
        sa.Column("registered_by", sa.String(ACTOR), nullable=False),
        sa.PrimaryKeyConstraint("credit_line_id", "party", name="pk_collections_contact"),
    )
    op.create_table(
        "collections_template",
        _id(),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("party", sa.String(24), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_on", sa.Date(), nullable=False),
        sa.Column("created_by", sa.String(ACTOR), nullable=False),
        sa.Column("approved_on", sa.Date(), nullable=True),
        sa.Column("approved_by", sa.String(ACTOR), nullable=True),
        sa.UniqueConstraint("code", "version", name="uq_collections_template_code_version"),
    )


def _attempts() -> None:
    op.create_table(
        "collections_contact_attempt",
        _id(),
        _fk("case_id", "collections_case.id", "fk_collections_attempt_case"),
        sa.Column("credit_line_id", sa.BigInteger(), nullable=False),
        sa.Column("customer_ref", sa.String(64), nullable=False),
        sa.Column("party", sa.String(24), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        _fk(
            "template_id",
            "collections_template.id",
            "fk_collections_attempt_template",
            nullable=True,
        ),
        sa.Column("contacted_at", sa.DateTime(), nullable=False),
        sa.Column("local_date", sa.Date(), nullable=False),
        sa.Column("outcome", sa.String(24), nullable=False),
        sa.Column("note_enc", sa.LargeBinary(), nullable=True),
        sa.Column("agent", sa.String(ACTOR), nullable=False),
        sa.Column("delivery", sa.String(16), nullable=True),
        sa.Column("provider_ref", sa.String(80), nullable=True),
    )
    op.create_index(
        "ix_collections_contact_attempt_case_id", "collections_contact_attempt", ["case_id"]
    )
    op.create_index(
        "ix_collections_attempt_customer_day",
        "collections_contact_attempt",
        ["customer_ref", "local_date"],
    )


def _promises_and_plans() -> None:
    op.create_table(
        "collections_promise",
        _id(),
        _fk("case_id", "collections_case.id", "fk_collections_promise_case"),
        sa.Column("credit_line_id", sa.BigInteger(), nullable=False),
        _fen("amount_fen"),
        _fen("paid_fen"),
        sa.Column("promised_on", sa.Date(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("evaluated_on", sa.Date(), nullable=True),
        _fk(
            "attempt_id",
            "collections_contact_attempt.id",
            "fk_collections_promise_attempt",
            nullable=True,
        ),
        sa.Column("recorded_by", sa.String(ACTOR), nullable=False),
        sa.CheckConstraint("amount_fen > 0", name="ck_collections_promise_amount"),
    )
    op.create_index("ix_collections_promise_case_id", "collections_promise", ["case_id"])
    op.create_index("ix_collections_promise_status", "collections_promise", ["status"])
    op.create_table(
        "collections_hardship_plan",
        _id(),
        _fk("case_id", "collections_case.id", "fk_collections_plan_case"),
        sa.Column("credit_line_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        _fen("principal_fen"),
        _fen("fee_fen"),
        sa.Column("term_months", sa.Integer(), nullable=False),
        sa.Column("rate_bps", sa.Integer(), nullable=False),
        sa.Column("effective_annual_bps", sa.Integer(), nullable=False),
        sa.Column("reason_code", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_on", sa.Date(), nullable=False),
        sa.Column("requested_by", sa.String(ACTOR), nullable=False),
        sa.Column("decided_on", sa.Date(), nullable=True),
        sa.Column("decided_by", sa.String(ACTOR), nullable=True),
        sa.Column("decision_reason", sa.String(64), nullable=True),
    )
    op.create_index(
        "ix_collections_hardship_plan_case_id", "collections_hardship_plan", ["case_id"]
    )
    op.create_index(
        "ix_collections_plan_line_status",
        "collections_hardship_plan",
        ["credit_line_id", "status"],
    )


def downgrade() -> None:
    for index, table in (
        ("ix_collections_plan_line_status", "collections_hardship_plan"),
        ("ix_collections_hardship_plan_case_id", "collections_hardship_plan"),
        ("ix_collections_promise_status", "collections_promise"),
        ("ix_collections_promise_case_id", "collections_promise"),
        ("ix_collections_attempt_customer_day", "collections_contact_attempt"),
        ("ix_collections_contact_attempt_case_id", "collections_contact_attempt"),
        ("ix_collections_case_customer", "collections_case"),
        ("ix_collections_case_status_queue", "collections_case"),
    ):
        op.drop_index(index, table_name=table)
    for table in (
        "collections_hardship_plan",
        "collections_promise",
        "collections_contact_attempt",
        "collections_template",
        "collections_contact",
        "collections_case",
        "collections_strategy_activation",
        "collections_strategy",
    ):
        op.drop_table(table)
