"""The tables of bill mode: bills, their lines, what happened at their due date, and the
past-due charges attributed to them.

A bill row is written once, when it is cut, and never changed: its figures are the
statement. What happens later is recorded in rows of its own: `bill_outcome` (one per
bill, at the end of its due date: paid in full or not, unpaid minimum, what moved to
past due, interest charged for the lost interest-free period) and `bill_charge` (every
amount made past due because of the bill: the unpaid minimum, the late fee, the daily
penalty interest), which end of day reads to find the oldest unpaid bill of a line.
Corrections to a bill appear on the next one.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
)
from sqlmodel import SQLModel

from node_api.ledger.schema import ID_TYPE

bill_table = Table(
    "bill",
    SQLModel.metadata,
    Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    Column(
        "credit_line_id",
        BigInteger,
        ForeignKey("credit_line.id", name="fk_bill_line"),
        nullable=False,
    ),
    Column("bill_date", Date, nullable=False),
    Column("cycle_start", Date, nullable=False),
    Column("due_date", Date, nullable=False),
    Column("product_code", String(32), nullable=False),
    Column("product_version", Integer, nullable=False),
    Column("statement_balance_fen", BigInteger, nullable=False),
    Column("minimum_payment_fen", BigInteger, nullable=False),
    Column("carried_fen", BigInteger, nullable=False),
    Column("past_due_fen", BigInteger, nullable=False),
    Column("new_principal_fen", BigInteger, nullable=False),
    Column("revolving_principal_fen", BigInteger, nullable=False),
    Column("interest_fen", BigInteger, nullable=False),
    Column("fee_fen", BigInteger, nullable=False),
    Column("penalty_fen", BigInteger, nullable=False),
    Column("installment_principal_fen", BigInteger, nullable=False),
    Column("installment_interest_fen", BigInteger, nullable=False),
    Column("installment_fee_fen", BigInteger, nullable=False),
    Column("purchases_fen", BigInteger, nullable=False),
    Column("refunds_fen", BigInteger, nullable=False),
    Column("payments_fen", BigInteger, nullable=False),
    Column("credit_balance_fen", BigInteger, nullable=False),
    Column("plan_principal_fen", BigInteger, nullable=False),
    Column("total_balance_fen", BigInteger, nullable=False),
    Column("days_past_due", Integer, nullable=False),
    Column("bucket", String(4), nullable=False),
    UniqueConstraint("credit_line_id", "bill_date", name="uq_bill_line_date"),
    CheckConstraint(
        "statement_balance_fen >= 0 AND minimum_payment_fen >= 0"
        " AND minimum_payment_fen <= statement_balance_fen AND days_past_due >= 0",
        name="ck_bill_amounts",
    ),
    Index("ix_bill_due_date", "due_date"),
    Index("ix_bill_bill_date", "bill_date"),
)

bill_line_table = Table(
    "bill_line",
    SQLModel.metadata,
    Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    Column(
        "bill_id",
        BigInteger,
        ForeignKey("bill.id", name="fk_bill_line_bill"),
        nullable=False,
        index=True,
    ),
    Column("kind", String(24), nullable=False),
    Column("ref_id", BigInteger, nullable=True),
    Column("posted_on", Date, nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
)

bill_outcome_table = Table(
    "bill_outcome",
    SQLModel.metadata,
    Column(
        "bill_id",
        BigInteger,
        ForeignKey("bill.id", name="fk_bill_outcome_bill"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("credit_line_id", BigInteger, nullable=False, index=True),
    Column("decided_on", Date, nullable=False),
    Column("paid_fen", BigInteger, nullable=False),
    Column("paid_in_full", Boolean, nullable=False),
    Column("unpaid_minimum_fen", BigInteger, nullable=False),
    Column("moved_to_past_due_fen", BigInteger, nullable=False),
    Column("retro_interest_fen", BigInteger, nullable=False),
    CheckConstraint(
        "unpaid_minimum_fen >= 0 AND moved_to_past_due_fen >= 0 AND retro_interest_fen >= 0",
        name="ck_bill_outcome_amounts",
    ),
)

bill_charge_table = Table(
    "bill_charge",
    SQLModel.metadata,
    Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    Column(
        "bill_id",
        BigInteger,
        ForeignKey("bill.id", name="fk_bill_charge_bill"),
        nullable=False,
    ),
    Column("credit_line_id", BigInteger, nullable=False, index=True),
    Column("as_of", Date, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    UniqueConstraint("bill_id", "kind", "as_of", name="uq_bill_charge_day"),
    CheckConstraint("amount_fen > 0", name="ck_bill_charge_positive"),
    CheckConstraint("kind IN ('past_due', 'late_fee', 'penalty')", name="ck_bill_charge_kind"),
)

__all__ = [
    "bill_charge_table",
    "bill_line_table",
    "bill_outcome_table",
    "bill_table",
]
