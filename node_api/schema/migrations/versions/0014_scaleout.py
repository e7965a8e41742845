"""Scale-out: every attempt of a relayed transaction, worker leases with a fencing epoch,
and the event stream's publishing cursors and last published delinquency buckets.

Revision ID: 0014_scaleout
Revises: 0013_risk_monitoring

Expand only (new tables, nothing altered or dropped), so nodes of the previous release
keep running beside migrated ones during a rolling upgrade. Hand-written for SQLite and
PostgreSQL alike; see `oracles/scaleout_tables.py` and `node_api/events/tables.py` for
what each table and column means.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_scaleout"
down_revision = "0013_risk_monitoring"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "relay_attempt",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column(
            "submission_id",
            sa.BigInteger(),
            sa.ForeignKey("relay_submission.id", name="fk_relay_attempt_submission"),
            nullable=False,
        ),
        sa.Column("sender", sa.String(42), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(66), nullable=False, unique=True),
        sa.Column("raw_tx", sa.Text(), nullable=False),
        sa.Column("max_fee_per_gas_wei", sa.BigInteger(), nullable=False),
        sa.Column("max_priority_fee_per_gas_wei", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_relay_attempt_submission", "relay_attempt", ["submission_id"])
    op.create_table(
        "worker_lease",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("holder", sa.String(64), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "event_cursor",
        sa.Column("source", sa.String(32), primary_key=True),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "event_line_bucket",
        sa.Column("credit_line_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("bucket", sa.String(4), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("event_line_bucket")
    op.drop_table("event_cursor")
    op.drop_table("worker_lease")
    op.drop_index("ix_relay_attempt_submission", table_name="relay_attempt")
    op.drop_table("relay_attempt")
