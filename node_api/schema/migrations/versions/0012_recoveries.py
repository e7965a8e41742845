"""Recoveries: guarantee terms and guarantor compensations, recoveries after charge-off or
compensation, and sales of charged-off debt.

Revision ID: 0012_recoveries
Revises: 0011_servicing

Hand-written for SQLite and PostgreSQL alike; see `node_api/collections/tables.py` for
what each table and column means. The ledger accounts these flows post to
(`subrogated_receivable`, `guarantor_claim`) are rows of `ledger_account`: no DDL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_recoveries"
down_revision = "0011_servicing"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ACTOR = 64
REF = 64


def _id() -> sa.Column[int]:
    return sa.Column("id", ID, primary_key=True, autoincrement=True)


def _line(constraint: str) -> sa.Column[int]:
    return sa.Column(
        "credit_line_id",
        sa.BigInteger(),
        sa.ForeignKey("credit_line.id", name=constraint),
        nullable=False,
    )


def _fen(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger(), nullable=False)


def upgrade() -> None:
    _compensations()
    _recoveries()
    _debt_sales()


def _compensations() -> None:
    op.create_table(
        "collections_compensation_terms",
        sa.Column("product_code", sa.String(32), primary_key=True),
        sa.Column("guarantor_ref", sa.String(REF), nullable=False),
        sa.Column("coverage", sa.String(16), nullable=False),
        sa.Column("set_on", sa.Date(), nullable=False),
        sa.Column("set_by", sa.String(ACTOR), nullable=False),
    )
    op.create_table(
        "collections_compensation",
        _id(),
        _line("fk_collections_compensation_line"),
        sa.Column("product_code", sa.String(32), nullable=False),
        sa.Column("guarantor_ref", sa.String(REF), nullable=False),
        sa.Column("coverage", sa.String(16), nullable=False),
        sa.Column("days_past_due", sa.Integer(), nullable=False),
        _fen("amount_fen"),
        sa.Column("repayment_id", sa.BigInteger(), nullable=False),
        sa.Column("batch_id", sa.BigInteger(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("agreement_change_seq", sa.Integer(), nullable=True),
        sa.Column("recorded_by", sa.String(ACTOR), nullable=False),
        sa.CheckConstraint("amount_fen > 0", name="ck_collections_compensation_amount"),
        sa.UniqueConstraint("credit_line_id", "as_of", name="uq_collections_compensation_line_day"),
    )
    op.create_index(
        "ix_collections_compensation_credit_line_id",
        "collections_compensation",
        ["credit_line_id"],
    )


def _recoveries() -> None:
    op.create_table(
        "collections_recovery",
        _id(),
        _line("fk_collections_recovery_line"),
        sa.Column("seq", sa.Integer(), nullable=False),
        _fen("amount_fen"),
        _fen("guarantor_fen"),
        _fen("shared_fen"),
        sa.Column("guarantor_ref", sa.String(REF), nullable=True),
        sa.Column("payment_ref", sa.String(64), nullable=True),
        sa.Column("batch_id", sa.BigInteger(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("recorded_by", sa.String(ACTOR), nullable=False),
        sa.CheckConstraint(
            "amount_fen > 0 AND guarantor_fen >= 0 AND shared_fen >= 0 "
            "AND amount_fen = guarantor_fen + shared_fen",
            name="ck_collections_recovery_parts",
        ),
        sa.UniqueConstraint("credit_line_id", "seq", name="uq_collections_recovery_line_seq"),
    )
    op.create_index(
        "ix_collections_recovery_credit_line_id", "collections_recovery", ["credit_line_id"]
    )


def _debt_sales() -> None:
    op.create_table(
        "collections_debt_sale",
        _id(),
        sa.Column("buyer_ref", sa.String(REF), nullable=False),
        _fen("face_fen"),
        _fen("price_fen"),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("recorded_by", sa.String(ACTOR), nullable=False),
        sa.CheckConstraint(
            "price_fen > 0 AND price_fen <= face_fen", name="ck_collections_sale_price"
        ),
    )
    op.create_table(
        "collections_debt_sale_line",
        sa.Column(
            "sale_id",
            sa.BigInteger(),
            sa.ForeignKey("collections_debt_sale.id", name="fk_collections_sale_line_sale"),
            nullable=False,
        ),
        _line("fk_collections_sale_line_line"),
        _fen("face_fen"),
        _fen("price_fen"),
        sa.Column("batch_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("credit_line_id", name="pk_collections_debt_sale_line"),
    )


def downgrade() -> None:
    op.drop_table("collections_debt_sale_line")
    op.drop_table("collections_debt_sale")
    op.drop_index("ix_collections_recovery_credit_line_id", "collections_recovery")
    op.drop_table("collections_recovery")
    op.drop_index("ix_collections_compensation_credit_line_id", "collections_compensation")
    op.drop_table("collections_compensation")
    op.drop_table("collections_compensation_terms")
