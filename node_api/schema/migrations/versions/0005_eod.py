"""Bills, installment plans, end-of-day state and checkpoints.

Revision ID: 0005_eod
Revises: 0004_onboarding

Hand-written for SQLite and PostgreSQL alike (see `node_api/lending/bill_tables.py`,
`installment_tables.py` and `eod/tables.py` for what each table means).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_eod"
down_revision = "0004_onboarding"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _id() -> sa.Column[int]:
    return sa.Column("id", ID, primary_key=True, autoincrement=True)


def _fen(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger(), nullable=False)


def upgrade() -> None:
    _bills()
    _bill_results()
    _plans()
    _installments()
    _eod()


_BILL_FEN_COLUMNS = (
    "statement_balance_fen",
    "minimum_payment_fen",
    "carried_fen",
    "past_due_fen",
    "new_principal_fen",
    "revolving_principal_fen",
    "interest_fen",
    "fee_fen",
    "penalty_fen",
    "installment_principal_fen",
    "installment_interest_fen",
    "installment_fee_fen",
    "purchases_fen",
    "refunds_fen",
    "payments_fen",
    "credit_balance_fen",
    "plan_principal_fen",
    "total_balance_fen",
)


def _bills() -> None:
    op.create_table(
        "bill",
        _id(),
        sa.Column(
            "credit_line_id",
            sa.BigInteger(),
            sa.ForeignKey("credit_line.id", name="fk_bill_line"),
            nullable=False,
        ),
        sa.Column("bill_date", sa.Date(), nullable=False),
        sa.Column("cycle_start", sa.Date(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("product_code", sa.String(32), nullable=False),
        sa.Column("product_version", sa.Integer(), nullable=False),
        *(_fen(name) for name in _BILL_FEN_COLUMNS),
        sa.Column("days_past_due", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.String(4), nullable=False),
        sa.UniqueConstraint("credit_line_id", "bill_date", name="uq_bill_line_date"),
        sa.CheckConstraint(
            "statement_balance_fen >= 0 AND minimum_payment_fen >= 0"
            " AND minimum_payment_fen <= statement_balance_fen AND days_past_due >= 0",
            name="ck_bill_amounts",
        ),
    )
    op.create_index("ix_bill_due_date", "bill", ["due_date"])
    op.create_index("ix_bill_bill_date", "bill", ["bill_date"])
    op.create_table(
        "bill_line",
        _id(),
        sa.Column(
            "bill_id",
            sa.BigInteger(),
            sa.ForeignKey("bill.id", name="fk_bill_line_bill"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("ref_id", sa.BigInteger(), nullable=True),
        sa.Column("posted_on", sa.Date(), nullable=False),
        _fen("amount_fen"),
    )
    op.create_index("ix_bill_line_bill_id", "bill_line", ["bill_id"])


def _bill_results() -> None:
    op.create_table(
        "bill_outcome",
        sa.Column(
            "bill_id",
            sa.BigInteger(),
            sa.ForeignKey("bill.id", name="fk_bill_outcome_bill"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("credit_line_id", sa.BigInteger(), nullable=False),
        sa.Column("decided_on", sa.Date(), nullable=False),
        _fen("paid_fen"),
        sa.Column("paid_in_full", sa.Boolean(), nullable=False),
        _fen("unpaid_minimum_fen"),
        _fen("moved_to_past_due_fen"),
        _fen("retro_interest_fen"),
        sa.CheckConstraint(
            "unpaid_minimum_fen >= 0 AND moved_to_past_due_fen >= 0 AND retro_interest_fen >= 0",
            name="ck_bill_outcome_amounts",
        ),
    )
    op.create_index("ix_bill_outcome_credit_line_id", "bill_outcome", ["credit_line_id"])
    op.create_table(
        "bill_charge",
        _id(),
        sa.Column(
            "bill_id",
            sa.BigInteger(),
            sa.ForeignKey("bill.id", name="fk_bill_charge_bill"),
            nullable=False,
        ),
        sa.Column("credit_line_id", sa.BigInteger(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        _fen("amount_fen"),
        sa.UniqueConstraint("bill_id", "kind", "as_of", name="uq_bill_charge_day"),
        sa.CheckConstraint("amount_fen > 0", name="ck_bill_charge_positive"),
        sa.CheckConstraint(
            "kind IN ('past_due', 'late_fee', 'penalty')", name="ck_bill_charge_kind"
        ),
    )
    op.create_index("ix_bill_charge_credit_line_id", "bill_charge", ["credit_line_id"])


def _plans() -> None:
    op.create_table(
        "installment_plan",
        _id(),
        sa.Column(
            "credit_line_id",
            sa.BigInteger(),
            sa.ForeignKey("credit_line.id", name="fk_installment_plan_line"),
            nullable=False,
        ),
        sa.Column("source_kind", sa.String(16), nullable=False),
        sa.Column(
            "purchase_id",
            sa.BigInteger(),
            sa.ForeignKey("purchase.id", name="fk_installment_plan_purchase"),
            nullable=True,
            unique=True,
        ),
        sa.Column(
            "bill_id",
            sa.BigInteger(),
            sa.ForeignKey("bill.id", name="fk_installment_plan_bill"),
            nullable=True,
            unique=True,
        ),
        sa.Column("product_code", sa.String(32), nullable=False),
        sa.Column("product_version", sa.Integer(), nullable=False),
        _fen("principal_fen"),
        sa.Column("tenor_months", sa.SmallInteger(), nullable=False),
        sa.Column("pricing_method", sa.String(24), nullable=False),
        sa.Column("rate_bps", sa.Integer(), nullable=False),
        _fen("installment_fee_fen"),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("first_bill_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("closed_on", sa.Date(), nullable=True),
        sa.CheckConstraint(
            "principal_fen > 0 AND tenor_months > 0 AND rate_bps >= 0 AND installment_fee_fen >= 0",
            name="ck_installment_plan_amounts",
        ),
        sa.CheckConstraint(
            "source_kind IN ('purchase', 'bill')", name="ck_installment_plan_source_kind"
        ),
        sa.CheckConstraint(
            "status IN ('active', 'completed', 'paid_off', 'cancelled', 'charged_off')",
            name="ck_installment_plan_status",
        ),
    )
    op.create_index("ix_installment_plan_credit_line_id", "installment_plan", ["credit_line_id"])


def _installments() -> None:
    op.create_table(
        "installment",
        _id(),
        sa.Column(
            "plan_id",
            sa.BigInteger(),
            sa.ForeignKey("installment_plan.id", name="fk_installment_plan"),
            nullable=False,
        ),
        sa.Column("credit_line_id", sa.BigInteger(), nullable=False),
        sa.Column("number", sa.SmallInteger(), nullable=False),
        sa.Column("bill_date", sa.Date(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        _fen("principal_fen"),
        _fen("interest_fen"),
        _fen("fee_fen"),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("bill_id", sa.BigInteger(), nullable=True),
        sa.UniqueConstraint("plan_id", "number", name="uq_installment_number"),
        sa.CheckConstraint(
            "principal_fen >= 0 AND interest_fen >= 0 AND fee_fen >= 0",
            name="ck_installment_amounts",
        ),
        sa.CheckConstraint(
            "status IN ('scheduled', 'billed', 'paid_off', 'cancelled', 'charged_off')",
            name="ck_installment_status",
        ),
    )
    op.create_index("ix_installment_line_bill_date", "installment", ["credit_line_id", "bill_date"])


def _eod() -> None:
    op.create_table(
        "line_delinquency",
        sa.Column(
            "credit_line_id",
            sa.BigInteger(),
            sa.ForeignKey("credit_line.id", name="fk_line_delinquency_line"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("revolving", sa.Boolean(), nullable=False),
        sa.Column("days_past_due", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.String(4), nullable=False),
        sa.Column("charged_off_on", sa.Date(), nullable=True),
    )
    op.create_table(
        "eod_run",
        sa.Column("as_of", sa.Date(), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
    )
    op.create_table(
        "eod_step",
        sa.Column("as_of", sa.Date(), primary_key=True),
        sa.Column("step", sa.String(24), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
    )
    op.create_table(
        "eod_batch",
        sa.Column("as_of", sa.Date(), primary_key=True),
        sa.Column("step", sa.String(24), primary_key=True),
        sa.Column("batch_no", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("last_line_id", sa.BigInteger(), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("postings", sa.Integer(), nullable=False),
        _fen("amount_fen"),
    )


def downgrade() -> None:
    for table in (
        "eod_batch",
        "eod_step",
        "eod_run",
        "line_delinquency",
        "installment",
        "installment_plan",
        "bill_charge",
        "bill_outcome",
        "bill_line",
        "bill",
    ):
        op.drop_table(table)
