"""Servicing: customer credit refunds, the credit applied on each bill and its class, the
principal of each past-due move, and each line's five-tier class, non-accrual date and
loan-loss provision.

Revision ID: 0011_servicing
Revises: 0010_collections

Hand-written for SQLite and PostgreSQL alike; see `node_api/lending/customer_credit.py`,
`node_api/lending/bill_tables.py` and `node_api/lending/eod/tables.py` for what each
table and column means. Existing rows get the defaults: no credit applied, normal, no
provision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_servicing"
down_revision = "0010_collections"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "credit_refund",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column(
            "credit_line_id",
            sa.BigInteger(),
            sa.ForeignKey("credit_line.id", name="fk_credit_refund_line"),
            nullable=False,
        ),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("batch_id", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("amount_fen > 0", name="ck_credit_refund_positive"),
    )
    op.create_index("ix_credit_refund_credit_line_id", "credit_refund", ["credit_line_id"])
    with op.batch_alter_table("bill") as bill:
        bill.add_column(
            sa.Column("credit_applied_fen", sa.BigInteger(), nullable=False, server_default="0")
        )
        bill.add_column(
            sa.Column("loan_class", sa.String(16), nullable=False, server_default="normal")
        )
    with op.batch_alter_table("bill_charge") as charge:
        charge.add_column(
            sa.Column("principal_fen", sa.BigInteger(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("line_delinquency") as state:
        state.add_column(
            sa.Column("loan_class", sa.String(16), nullable=False, server_default="normal")
        )
        state.add_column(sa.Column("non_accrual_since", sa.Date(), nullable=True))
        state.add_column(
            sa.Column("provision_fen", sa.BigInteger(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("line_delinquency") as state:
        state.drop_column("provision_fen")
        state.drop_column("non_accrual_since")
        state.drop_column("loan_class")
    with op.batch_alter_table("bill_charge") as charge:
        charge.drop_column("principal_fen")
    with op.batch_alter_table("bill") as bill:
        bill.drop_column("loan_class")
        bill.drop_column("credit_applied_fen")
    op.drop_index("ix_credit_refund_credit_line_id", table_name="credit_refund")
    op.drop_table("credit_refund")
