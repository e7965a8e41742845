"""Credit-line states: one row per settled business date with its root, the quorum's
signatures, the balances and the Merkle tree (blobs), from which balance proofs are served.

Revision ID: 0007_line_states
Revises: 0007_cycle_attempts

Hand-written for SQLite and PostgreSQL alike; see `settlement/tables.py`
(`settlement_line_state`) for what each column means.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_line_states"
down_revision = "0007_cycle_attempts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "settlement_line_state",
        sa.Column("cycle_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("cycle_date", sa.Date(), nullable=False, unique=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("root", sa.String(66), nullable=True),
        sa.Column("leaf_count", sa.BigInteger(), nullable=False),
        sa.Column("total_outstanding_fen", sa.BigInteger(), nullable=False),
        sa.Column("signatures", sa.JSON(), nullable=True),
        sa.Column("signer_addresses", sa.JSON(), nullable=True),
        sa.Column("leaves_blob", sa.LargeBinary(), nullable=True),
        sa.Column("tree_blob", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("settlement_line_state")
