"""Accrual carries: per credit line and accrual component, the rounding carry of daily
interest, so daily accrual adds up to the interest of the whole period rounded once.

Revision ID: 0008_accrual_carry
Revises: 0007_line_states

Hand-written for SQLite and PostgreSQL alike; see `node_api/lending/eod/tables.py`
(`line_accrual`) for what each column means. Lines that accrued before this migration
start with no carry (a running total of zero).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_accrual_carry"
down_revision = "0007_line_states"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "line_accrual",
        sa.Column(
            "credit_line_id",
            sa.BigInteger(),
            sa.ForeignKey("credit_line.id", name="fk_line_accrual_line"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("component", sa.String(16), primary_key=True),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("remainder", sa.BigInteger(), nullable=False),
        sa.Column("denominator", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("line_accrual")
