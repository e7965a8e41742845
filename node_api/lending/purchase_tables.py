"""Purchases and cash drawdowns (`purchase`), their refunds and every reduction of
their open principal (`principal_reduction`), as SQLAlchemy Core tables.

Written by the lending kernel's batch path (`node_api.lending.core.batch`), refunds and
repayments (`node_api.lending.purchases`); read by end of day and the line limits.
"""

from __future__ import annotations

from sqlalchemy.schema import CheckConstraint, Column, Index, Table
from sqlalchemy.types import BigInteger, Date, String
from sqlmodel import SQLModel

from node_api.ledger.schema import fen_columns, fk_column, id_column, line_column, product_columns

purchase_table = Table(
    "purchase",
    SQLModel.metadata,
    id_column(),
    line_column("fk_purchase_line"),
    Column("kind", String(16), nullable=False),
    Column("product_node_id", BigInteger, nullable=False),
    *product_columns(),
    Column("channel_id", String(64), nullable=False),
    Column("merchant_id", String(64), nullable=True),
    Column("currency", String(3), nullable=False),
    *fen_columns("amount_fen"),
    Column("fee_fen", BigInteger, nullable=False, server_default="0"),
    Column("refunded_fen", BigInteger, nullable=False, server_default="0"),
    *fen_columns("principal_open_fen"),
    Column("as_of", Date, nullable=False),
    CheckConstraint(
        "amount_fen > 0 AND fee_fen >= 0 AND refunded_fen >= 0 AND refunded_fen <= amount_fen"
        " AND principal_open_fen >= 0 AND principal_open_fen <= amount_fen",
        name="ck_purchase_amounts",
    ),
    Index("ix_purchase_line_fifo", "credit_line_id", "as_of", "id"),
    Column("customer_id", String(64), nullable=True),
)

purchase_refund_table = Table(
    "purchase_refund",
    SQLModel.metadata,
    id_column(),
    fk_column("purchase_id", "purchase.id", "fk_purchase_refund_purchase", index=True),
    Column("credit_line_id", BigInteger, nullable=False),
    Column("batch_id", BigInteger, nullable=False),
    *fen_columns("amount_fen", "principal_fen", "credit_fen"),
    Column("as_of", Date, nullable=False),
    CheckConstraint(
        "amount_fen > 0 AND principal_fen >= 0 AND credit_fen >= 0"
        " AND principal_fen + credit_fen = amount_fen",
        name="ck_purchase_refund_amounts",
    ),
    Column("customer_id", String(64), nullable=True),
)

principal_reduction_table = Table(
    "principal_reduction",
    SQLModel.metadata,
    id_column(),
    Column("batch_id", BigInteger, nullable=False, index=True),
    fk_column("purchase_id", "purchase.id", "fk_principal_reduction_purchase"),
    *fen_columns("amount_fen"),
    CheckConstraint("amount_fen > 0", name="ck_principal_reduction_positive"),
    Column("customer_id", String(64), nullable=True),
)
