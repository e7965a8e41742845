"""The tables of bill mode: bills, their lines, what happened at their due date, and the
past-due charges attributed to them.

A bill row is written once, when it is cut, and never changed: its figures are the
statement. What happens later is recorded in rows of its own: `bill_outcome` (one per
bill, at the end of its due date: paid in full or not, unpaid minimum, what moved to
past due, interest charged for the lost interest-free period) and `bill_charge` (every
amount made past due because of the bill: the unpaid minimum, the late fee, the daily
penalty interest; of a past-due move, how much was principal), which end of day reads
to find the oldest unpaid bill of a line and the bureau file to age overdue principal.
Corrections to a bill appear on the next one.

A line holding customer credit has it applied at the cut to what the bill made due: the
bill's statement, minimum, past-due and total balances are net of it and
`credit_applied_fen` states it (a `credit_applied` bill line too). `loan_class` is the
line's five-tier class at the cut (as `days_past_due` and `bucket`).
"""

from __future__ import annotations

from sqlalchemy.schema import CheckConstraint, Column, Index, Table, UniqueConstraint
from sqlalchemy.types import BigInteger, Boolean, Date, Integer, String
from sqlmodel import SQLModel

from node_api.ledger.schema import fen_columns, fk_column, id_column, line_column, product_columns

bill_table = Table(
    "bill",
    SQLModel.metadata,
    id_column(),
    line_column("fk_bill_line"),
    Column("bill_date", Date, nullable=False),
    Column("cycle_start", Date, nullable=False),
    Column("due_date", Date, nullable=False),
    *product_columns(),
    *fen_columns("statement_balance_fen", "minimum_payment_fen", "carried_fen", "past_due_fen"),
    *fen_columns("new_principal_fen", "revolving_principal_fen"),
    *fen_columns("interest_fen", "fee_fen", "penalty_fen"),
    *fen_columns("installment_principal_fen", "installment_interest_fen", "installment_fee_fen"),
    *fen_columns("purchases_fen", "refunds_fen", "payments_fen", "credit_balance_fen"),
    *fen_columns("plan_principal_fen", "total_balance_fen"),
    Column("days_past_due", Integer, nullable=False),
    Column("bucket", String(4), nullable=False),
    Column("credit_applied_fen", BigInteger, nullable=False, server_default="0"),
    Column("loan_class", String(16), nullable=False, server_default="normal"),
    UniqueConstraint("credit_line_id", "bill_date", name="uq_bill_line_date"),
    CheckConstraint(
        "statement_balance_fen >= 0 AND minimum_payment_fen >= 0"
        " AND minimum_payment_fen <= statement_balance_fen AND days_past_due >= 0",
        name="ck_bill_amounts",
    ),
    Index("ix_bill_due_date", "due_date"),
    Index("ix_bill_bill_date", "bill_date"),
    Column("customer_id", String(64), nullable=True),
)

bill_line_table = Table(
    "bill_line",
    SQLModel.metadata,
    id_column(),
    fk_column("bill_id", "bill.id", "fk_bill_line_bill", index=True),
    Column("kind", String(24), nullable=False),
    Column("ref_id", BigInteger, nullable=True),
    Column("posted_on", Date, nullable=False),
    *fen_columns("amount_fen"),
    Column("customer_id", String(64), nullable=True),
)

bill_outcome_table = Table(
    "bill_outcome",
    SQLModel.metadata,
    fk_column("bill_id", "bill.id", "fk_bill_outcome_bill", primary_key=True),
    Column("credit_line_id", BigInteger, nullable=False, index=True),
    Column("decided_on", Date, nullable=False),
    *fen_columns("paid_fen"),
    Column("paid_in_full", Boolean, nullable=False),
    *fen_columns("unpaid_minimum_fen", "moved_to_past_due_fen", "retro_interest_fen"),
    CheckConstraint(
        "unpaid_minimum_fen >= 0 AND moved_to_past_due_fen >= 0 AND retro_interest_fen >= 0",
        name="ck_bill_outcome_amounts",
    ),
    Column("customer_id", String(64), nullable=True),
)

bill_charge_table = Table(
    "bill_charge",
    SQLModel.metadata,
    id_column(),
    fk_column("bill_id", "bill.id", "fk_bill_charge_bill"),
    Column("credit_line_id", BigInteger, nullable=False, index=True),
    Column("as_of", Date, nullable=False),
    Column("kind", String(16), nullable=False),
    *fen_columns("amount_fen"),
    Column("principal_fen", BigInteger, nullable=False, server_default="0"),
    UniqueConstraint("bill_id", "kind", "as_of", name="uq_bill_charge_day"),
    CheckConstraint("amount_fen > 0", name="ck_bill_charge_positive"),
    CheckConstraint("kind IN ('past_due', 'late_fee', 'penalty')", name="ck_bill_charge_kind"),
    Column("customer_id", String(64), nullable=True),
)

__all__ = [
    "bill_charge_table",
    "bill_line_table",
    "bill_outcome_table",
    "bill_table",
]
