"""End of day across nodes: who runs each shard of a step (`eod_shard` claims).

Revision ID: 0018_eod_shard_claims
Revises: 0017_account_fillfactor

Three nullable columns on `eod_shard`: the claim's holder, its epoch (rising by one at
every claim of the shard: a batch writes only under the epoch it claimed) and the time it
expires unless a committed batch renews it (see `node_api/lending/eod/claims.py`).

Expand only (nullable columns, nothing altered or dropped): nodes of the previous release
keep running end of day beside migrated ones during a rolling upgrade; they neither read
nor write the claims (a date they shard runs on their own workers, as before).
Hand-written for SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018_eod_shard_claims"
down_revision = "0017_account_fillfactor"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("eod_shard") as batch:
        batch.add_column(sa.Column("claim_holder", sa.String(128), nullable=True))
        batch.add_column(sa.Column("claim_epoch", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("claim_expires_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("eod_shard") as batch:
        batch.drop_column("claim_expires_at")
        batch.drop_column("claim_epoch")
        batch.drop_column("claim_holder")
