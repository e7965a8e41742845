"""The tables of installment plans: one row per plan and one per installment.

A plan's installments are written in full when the plan is made (amounts exact to the
fen, from `compute_amortization`); end of day marks each one billed on its bill date.
Ending a plan early (full early repayment, cancellation, charge-off) marks the
installments not billed yet with the way they ended; nothing is deleted. A partial
prepayment or a partial refund re-amortizes the installments not billed yet in place
(same number, same dates; see `node_api.lending.plan_prepayment`).
"""

from __future__ import annotations

from sqlalchemy.schema import CheckConstraint, Column, Index, Table, UniqueConstraint
from sqlalchemy.types import BigInteger, Date, Integer, SmallInteger, String
from sqlmodel import SQLModel

from node_api.ledger.schema import fen_columns, fk_column, id_column, line_column, product_columns

installment_plan_table = Table(
    "installment_plan",
    SQLModel.metadata,
    id_column(),
    line_column("fk_installment_plan_line", index=True),
    Column("source_kind", String(16), nullable=False),
    fk_column(
        "purchase_id", "purchase.id", "fk_installment_plan_purchase", nullable=True, unique=True
    ),
    fk_column("bill_id", "bill.id", "fk_installment_plan_bill", nullable=True, unique=True),
    *product_columns(),
    *fen_columns("principal_fen"),
    Column("tenor_months", SmallInteger, nullable=False),
    Column("pricing_method", String(24), nullable=False),
    Column("rate_bps", Integer, nullable=False),
    *fen_columns("installment_fee_fen"),
    Column("start_date", Date, nullable=False),
    Column("first_bill_date", Date, nullable=False),
    Column("status", String(16), nullable=False),
    Column("closed_on", Date, nullable=True),
    CheckConstraint(
        "principal_fen > 0 AND tenor_months > 0 AND rate_bps >= 0 AND installment_fee_fen >= 0",
        name="ck_installment_plan_amounts",
    ),
    CheckConstraint("source_kind IN ('purchase', 'bill')", name="ck_installment_plan_source_kind"),
    CheckConstraint(
        "status IN ('active', 'completed', 'paid_off', 'cancelled', 'charged_off')",
        name="ck_installment_plan_status",
    ),
    Column("customer_id", String(64), nullable=True),
)

installment_table = Table(
    "installment",
    SQLModel.metadata,
    id_column(),
    fk_column("plan_id", "installment_plan.id", "fk_installment_plan"),
    Column("credit_line_id", BigInteger, nullable=False),
    Column("number", SmallInteger, nullable=False),
    Column("bill_date", Date, nullable=False),
    Column("due_date", Date, nullable=False),
    *fen_columns("principal_fen", "interest_fen", "fee_fen"),
    Column("status", String(16), nullable=False),
    Column("bill_id", BigInteger, nullable=True),
    UniqueConstraint("plan_id", "number", name="uq_installment_number"),
    CheckConstraint(
        "principal_fen >= 0 AND interest_fen >= 0 AND fee_fen >= 0",
        name="ck_installment_amounts",
    ),
    CheckConstraint(
        "status IN ('scheduled', 'billed', 'paid_off', 'cancelled', 'charged_off')",
        name="ck_installment_status",
    ),
    Index("ix_installment_line_bill_date", "credit_line_id", "bill_date"),
    Column("customer_id", String(64), nullable=True),
)
