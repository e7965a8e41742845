"""Settlement cycles per attempt: a business date may be settled again after its cycle
was rejected on a dispute or defaulted for want of funding.

Revision ID: 0007_cycle_attempts
Revises: 0006_settlement

Drops the uniqueness of `settlement_cycle.cycle_date` (the cycle id carries the attempt:
`attempt * 10**8 + yyyymmdd`) and indexes the date instead. SQLite cannot drop a
constraint, so there the table is rebuilt from its definition without it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_cycle_attempts"
down_revision = "0006_settlement"
branch_labels = None
depends_on = None


def _cycle_table(*, unique_date: bool) -> sa.Table:
    return sa.Table(
        "settlement_cycle",
        sa.MetaData(),
        sa.Column("cycle_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("cycle_date", sa.Date(), nullable=False, unique=unique_date),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("entries_root", sa.String(66), nullable=True),
        sa.Column("entry_count", sa.BigInteger(), nullable=False),
        sa.Column("event_count", sa.BigInteger(), nullable=False),
        sa.Column("partner_count", sa.Integer(), nullable=False),
        sa.Column("total_due_fen", sa.BigInteger(), nullable=False),
        sa.Column("signatures", sa.JSON(), nullable=True),
        sa.Column("signer_addresses", sa.JSON(), nullable=True),
        sa.Column("closed_at", sa.DateTime(), nullable=False),
        sa.Column("proposed_at", sa.DateTime(), nullable=True),
    )


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("settlement_cycle_cycle_date_key", "settlement_cycle", type_="unique")
    else:
        with op.batch_alter_table(
            "settlement_cycle", recreate="always", copy_from=_cycle_table(unique_date=False)
        ):
            pass
    op.create_index("ix_settlement_cycle_cycle_date", "settlement_cycle", ["cycle_date"])


def downgrade() -> None:
    op.drop_index("ix_settlement_cycle_cycle_date", table_name="settlement_cycle")
    if op.get_bind().dialect.name == "postgresql":
        op.create_unique_constraint(
            "settlement_cycle_cycle_date_key", "settlement_cycle", ["cycle_date"]
        )
    else:
        with op.batch_alter_table(
            "settlement_cycle", recreate="always", copy_from=_cycle_table(unique_date=True)
        ):
            pass
