"""Purchases and cash drawdowns (`purchase`), their refunds and every reduction of
their open principal (`principal_reduction`), as SQLAlchemy Core tables.

Written by the lending kernel's batch path (`node_api.lending.core.batch`), refunds and
repayments (`node_api.lending.purchases`); read by end of day and the line limits.
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
    String,
    Table,
)
from sqlmodel import SQLModel

from node_api.ledger.schema import ID_TYPE

purchase_table = Table(
    "purchase",
    SQLModel.metadata,
    Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    Column(
        "credit_line_id",
        BigInteger,
        ForeignKey("credit_line.id", name="fk_purchase_line"),
        nullable=False,
    ),
    Column("kind", String(16), nullable=False),
    Column("product_node_id", BigInteger, nullable=False),
    Column("product_code", String(32), nullable=False),
    Column("product_version", Integer, nullable=False),
    Column("channel_id", String(64), nullable=False),
    Column("merchant_id", String(64), nullable=True),
    Column("currency", String(3), nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("fee_fen", BigInteger, nullable=False, server_default="0"),
    Column("refunded_fen", BigInteger, nullable=False, server_default="0"),
    Column("principal_open_fen", BigInteger, nullable=False),
    Column("as_of", Date, nullable=False),
    CheckConstraint(
        "amount_fen > 0 AND fee_fen >= 0 AND refunded_fen >= 0 AND refunded_fen <= amount_fen"
        " AND principal_open_fen >= 0 AND principal_open_fen <= amount_fen",
        name="ck_purchase_amounts",
    ),
    Index("ix_purchase_line_fifo", "credit_line_id", "as_of", "id"),
)

purchase_refund_table = Table(
    "purchase_refund",
    SQLModel.metadata,
    Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    Column(
        "purchase_id",
        BigInteger,
        ForeignKey("purchase.id", name="fk_purchase_refund_purchase"),
        nullable=False,
        index=True,
    ),
    Column("credit_line_id", BigInteger, nullable=False),
    Column("batch_id", BigInteger, nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("principal_fen", BigInteger, nullable=False),
    Column("credit_fen", BigInteger, nullable=False),
    Column("as_of", Date, nullable=False),
    CheckConstraint(
        "amount_fen > 0 AND principal_fen >= 0 AND credit_fen >= 0"
        " AND principal_fen + credit_fen = amount_fen",
        name="ck_purchase_refund_amounts",
    ),
)

principal_reduction_table = Table(
    "principal_reduction",
    SQLModel.metadata,
    Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    Column("batch_id", BigInteger, nullable=False, index=True),
    Column(
        "purchase_id",
        BigInteger,
        ForeignKey("purchase.id", name="fk_principal_reduction_purchase"),
        nullable=False,
    ),
    Column("amount_fen", BigInteger, nullable=False),
    CheckConstraint("amount_fen > 0", name="ck_principal_reduction_positive"),
)
