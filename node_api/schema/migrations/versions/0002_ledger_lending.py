"""Ledger, idempotency, product versions, credit lines, purchases and repayments.

Revision ID: 0002_ledger_lending
Revises: 0001_api_keys

Hand-written for SQLite and PostgreSQL alike. Amounts are BIGINT fen; ids are BIGINT
(INTEGER PRIMARY KEY on SQLite, the only type it auto-increments).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_ledger_lending"
down_revision = "0001_api_keys"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _id() -> sa.Column[int]:
    return sa.Column("id", ID, primary_key=True, autoincrement=True)


def upgrade() -> None:
    _ledger()
    _idempotency_and_products()
    _lines()
    _uses_and_repayments()


def _ledger() -> None:
    op.create_table(
        "business_date",
        sa.Column("id", sa.SmallInteger(), primary_key=True, autoincrement=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_business_date_single_row"),
    )
    op.create_table(
        "ledger_account",
        _id(),
        sa.Column("code", sa.String(160), nullable=False, unique=True),
        sa.Column("account_type", sa.String(40), nullable=False),
        sa.Column("credit_line_id", sa.BigInteger(), nullable=True),
        sa.Column("partner_ref", sa.String(64), nullable=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("normal_sign", sa.SmallInteger(), nullable=False),
        sa.Column("floor_fen", sa.BigInteger(), nullable=True),
        sa.Column("balance_fen", sa.BigInteger(), nullable=False, server_default="0"),
        sa.CheckConstraint("normal_sign IN (1, -1)", name="ck_ledger_account_normal_sign"),
        sa.CheckConstraint(
            "floor_fen IS NULL OR balance_fen * normal_sign >= floor_fen",
            name="ck_ledger_account_floor",
        ),
    )
    op.create_index("ix_ledger_account_credit_line_id", "ledger_account", ["credit_line_id"])
    op.create_table(
        "posting_batch",
        _id(),
        sa.Column("business_key", sa.String(160), nullable=False, unique=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("credit_line_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "reverses_batch_id",
            sa.BigInteger(),
            sa.ForeignKey("posting_batch.id", name="fk_posting_batch_reverses"),
            nullable=True,
            unique=True,
        ),
    )
    op.create_index("ix_posting_batch_as_of", "posting_batch", ["as_of"])
    op.create_index("ix_posting_batch_credit_line_id", "posting_batch", ["credit_line_id"])
    op.create_table(
        "posting",
        _id(),
        sa.Column("batch_id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.CheckConstraint("amount_fen <> 0", name="ck_posting_nonzero"),
    )
    op.create_index("ix_posting_batch_id", "posting", ["batch_id"])
    op.create_index("ix_posting_account_as_of", "posting", ["account_id", "as_of"])
    op.create_table(
        "settlement_event",
        _id(),
        sa.Column("batch_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("credit_line_id", sa.BigInteger(), nullable=True),
        sa.Column("product_code", sa.String(32), nullable=True),
        sa.Column("product_version", sa.Integer(), nullable=True),
        sa.Column("partner_ref", sa.String(64), nullable=True),
        sa.Column("counterparty_ref", sa.String(64), nullable=True),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("amount_fen <> 0", name="ck_settlement_event_nonzero"),
    )
    op.create_index("ix_settlement_event_batch_id", "settlement_event", ["batch_id"])
    op.create_index("ix_settlement_event_as_of", "settlement_event", ["as_of"])


def _idempotency_and_products() -> None:
    op.create_table(
        "idempotency_record",
        sa.Column("scope", sa.String(64), primary_key=True),
        sa.Column("idempotency_key", sa.String(255), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
    )
    op.create_table(
        "idempotency_response",
        sa.Column("scope", sa.String(64), primary_key=True),
        sa.Column("idempotency_key", sa.String(255), primary_key=True),
        sa.Column("status_code", sa.SmallInteger(), nullable=False),
        sa.Column("response_body", sa.Text(), nullable=False),
    )
    op.create_table(
        "product_version",
        sa.Column("product_code", sa.String(32), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("product_type", sa.String(32), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("terms_hash", sa.String(66), nullable=False),
        sa.Column("terms_json", sa.Text(), nullable=False),
    )


def _lines() -> None:
    op.create_table(
        "credit_line",
        _id(),
        sa.Column("customer_ref", sa.String(64), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("opened_on", sa.Date(), nullable=False),
        sa.Column("closed_on", sa.Date(), nullable=True),
        sa.Column("bill_day", sa.SmallInteger(), nullable=False),
        sa.CheckConstraint(
            "status IN ('active', 'frozen', 'closed')", name="ck_credit_line_status"
        ),
    )
    op.create_index(
        "ux_credit_line_customer_open",
        "credit_line",
        ["customer_ref"],
        unique=True,
        postgresql_where=sa.text("status <> 'closed'"),
        sqlite_where=sa.text("status <> 'closed'"),
    )
    op.create_table(
        "limit_node",
        _id(),
        sa.Column(
            "credit_line_id",
            sa.BigInteger(),
            sa.ForeignKey("credit_line.id", name="fk_limit_node_line"),
            nullable=False,
        ),
        sa.Column(
            "parent_id",
            sa.BigInteger(),
            sa.ForeignKey("limit_node.id", name="fk_limit_node_parent"),
            nullable=True,
        ),
        sa.Column("path", sa.String(200), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("product_code", sa.String(32), nullable=True),
        sa.Column("product_version", sa.Integer(), nullable=True),
        sa.Column("limit_fen", sa.BigInteger(), nullable=False),
        sa.Column("temp_raise_fen", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("temp_raise_expires_on", sa.Date(), nullable=True),
        sa.Column("used_fen", sa.BigInteger(), nullable=False, server_default="0"),
        sa.UniqueConstraint("credit_line_id", "path", name="uq_limit_node_path"),
        sa.CheckConstraint(
            "limit_fen >= 0 AND temp_raise_fen >= 0 AND used_fen >= 0",
            name="ck_limit_node_amounts",
        ),
    )


def _uses_and_repayments() -> None:
    op.create_table(
        "purchase",
        _id(),
        sa.Column(
            "credit_line_id",
            sa.BigInteger(),
            sa.ForeignKey("credit_line.id", name="fk_purchase_line"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("product_node_id", sa.BigInteger(), nullable=False),
        sa.Column("product_code", sa.String(32), nullable=False),
        sa.Column("product_version", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.String(64), nullable=False),
        sa.Column("merchant_id", sa.String(64), nullable=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("fee_fen", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("refunded_fen", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("principal_open_fen", sa.BigInteger(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.CheckConstraint(
            "amount_fen > 0 AND fee_fen >= 0 AND refunded_fen >= 0 AND refunded_fen <= amount_fen"
            " AND principal_open_fen >= 0 AND principal_open_fen <= amount_fen",
            name="ck_purchase_amounts",
        ),
    )
    op.create_index("ix_purchase_line_fifo", "purchase", ["credit_line_id", "as_of", "id"])
    op.create_table(
        "purchase_refund",
        _id(),
        sa.Column(
            "purchase_id",
            sa.BigInteger(),
            sa.ForeignKey("purchase.id", name="fk_purchase_refund_purchase"),
            nullable=False,
        ),
        sa.Column("credit_line_id", sa.BigInteger(), nullable=False),
        sa.Column("batch_id", sa.BigInteger(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("principal_fen", sa.BigInteger(), nullable=False),
        sa.Column("credit_fen", sa.BigInteger(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.CheckConstraint(
            "amount_fen > 0 AND principal_fen >= 0 AND credit_fen >= 0"
            " AND principal_fen + credit_fen = amount_fen",
            name="ck_purchase_refund_amounts",
        ),
    )
    op.create_index("ix_purchase_refund_purchase_id", "purchase_refund", ["purchase_id"])
    op.create_table(
        "principal_reduction",
        _id(),
        sa.Column("batch_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "purchase_id",
            sa.BigInteger(),
            sa.ForeignKey("purchase.id", name="fk_principal_reduction_purchase"),
            nullable=False,
        ),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("amount_fen > 0", name="ck_principal_reduction_positive"),
    )
    op.create_index("ix_principal_reduction_batch_id", "principal_reduction", ["batch_id"])
    op.create_table(
        "repayment",
        _id(),
        sa.Column(
            "credit_line_id",
            sa.BigInteger(),
            sa.ForeignKey("credit_line.id", name="fk_repayment_line"),
            nullable=False,
        ),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("payment_ref", sa.String(64), nullable=True),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reversed_on", sa.Date(), nullable=True),
        sa.CheckConstraint("amount_fen > 0", name="ck_repayment_positive"),
        sa.CheckConstraint("status IN ('posted', 'reversed')", name="ck_repayment_status"),
    )
    op.create_index("ix_repayment_credit_line_id", "repayment", ["credit_line_id"])
    op.create_table(
        "repayment_allocation",
        _id(),
        sa.Column(
            "repayment_id",
            sa.BigInteger(),
            sa.ForeignKey("repayment.id", name="fk_repayment_allocation_repayment"),
            nullable=False,
        ),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.BigInteger(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.UniqueConstraint("repayment_id", "seq", name="uq_repayment_allocation_seq"),
    )


def downgrade() -> None:
    for table in (
        "repayment_allocation",
        "repayment",
        "principal_reduction",
        "purchase_refund",
        "purchase",
        "limit_node",
        "credit_line",
        "product_version",
        "idempotency_response",
        "idempotency_record",
        "settlement_event",
        "posting",
        "posting_batch",
        "ledger_account",
        "business_date",
    ):
        op.drop_table(table)
