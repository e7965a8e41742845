"""End of day in shards: one checkpoint row per date, step and shard (`eod_shard`).

Revision ID: 0015_eod_shards
Revises: 0014_scaleout

Expand only (one new table, nothing altered or dropped), so nodes of the previous release
keep running beside migrated ones during a rolling upgrade (they run end of day in one
shard and never read the table). Hand-written for SQLite and PostgreSQL alike; see
`node_api/lending/eod/tables.py` for what each column means.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_eod_shards"
down_revision = "0014_scaleout"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "eod_shard",
        sa.Column("as_of", sa.Date(), primary_key=True),
        sa.Column("step", sa.String(24), primary_key=True),
        sa.Column("shard", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("shards", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("batches", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_line_id", sa.BigInteger(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("eod_shard")
