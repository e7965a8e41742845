"""The tables of installment plans: one row per plan and one per installment.

A plan's installments are written in full when the plan is made (amounts exact to the
fen, from `compute_amortization`); end of day marks each one billed on its bill date.
Ending a plan early (full early repayment, cancellation, charge-off) marks the
installments not billed yet with the way they ended; nothing is deleted.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    UniqueConstraint,
)
from sqlmodel import SQLModel

from node_api.ledger.schema import ID_TYPE

installment_plan_table = Table(
    "installment_plan",
    SQLModel.metadata,
    Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    Column(
        "credit_line_id",
        BigInteger,
        ForeignKey("credit_line.id", name="fk_installment_plan_line"),
        nullable=False,
        index=True,
    ),
    Column("source_kind", String(16), nullable=False),
    Column(
        "purchase_id",
        BigInteger,
        ForeignKey("purchase.id", name="fk_installment_plan_purchase"),
        nullable=True,
        unique=True,
    ),
    Column(
        "bill_id",
        BigInteger,
        ForeignKey("bill.id", name="fk_installment_plan_bill"),
        nullable=True,
        unique=True,
    ),
    Column("product_code", String(32), nullable=False),
    Column("product_version", Integer, nullable=False),
    Column("principal_fen", BigInteger, nullable=False),
    Column("tenor_months", SmallInteger, nullable=False),
    Column("pricing_method", String(24), nullable=False),
    Column("rate_bps", Integer, nullable=False),
    Column("installment_fee_fen", BigInteger, nullable=False),
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
)

installment_table = Table(
    "installment",
    SQLModel.metadata,
    Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    Column(
        "plan_id",
        BigInteger,
        ForeignKey("installment_plan.id", name="fk_installment_plan"),
        nullable=False,
    ),
    Column("credit_line_id", BigInteger, nullable=False),
    Column("number", SmallInteger, nullable=False),
    Column("bill_date", Date, nullable=False),
    Column("due_date", Date, nullable=False),
    Column("principal_fen", BigInteger, nullable=False),
    Column("interest_fen", BigInteger, nullable=False),
    Column("fee_fen", BigInteger, nullable=False),
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
)
