"""The tables of repayments: one row per payment, and one per allocation of it (a
payment is allocated again, with the next `seq`, when an earlier one bounces)."""

from __future__ import annotations

from sqlalchemy.schema import CheckConstraint, Column, Table, UniqueConstraint
from sqlalchemy.types import BigInteger, Boolean, Date, Integer, String

from node_api.ledger.schema import fen_columns, fk_column, id_column, line_column, metadata

repayment_table = Table(
    "repayment",
    metadata,
    id_column(),
    line_column("fk_repayment_line", index=True),
    *fen_columns("amount_fen"),
    Column("currency", String(3), nullable=False),
    Column("payment_ref", String(64), nullable=True),
    Column("as_of", Date, nullable=False),
    Column("status", String(16), nullable=False),
    Column("reversed_on", Date, nullable=True),
    CheckConstraint("amount_fen > 0", name="ck_repayment_positive"),
    CheckConstraint("status IN ('posted', 'reversed')", name="ck_repayment_status"),
    Column("customer_id", String(64), nullable=True),
)

repayment_allocation_table = Table(
    "repayment_allocation",
    metadata,
    id_column(),
    fk_column("repayment_id", "repayment.id", "fk_repayment_allocation_repayment"),
    Column("seq", Integer, nullable=False),
    Column("batch_id", BigInteger, nullable=False),
    Column("active", Boolean, nullable=False),
    UniqueConstraint("repayment_id", "seq", name="uq_repayment_allocation_seq"),
    Column("customer_id", String(64), nullable=True),
)
