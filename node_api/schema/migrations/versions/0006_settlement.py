"""Settlement: partners, guarantees, closed cycles, entries, positions, trees, event claims.

Revision ID: 0006_settlement
Revises: 0005_eod

Hand-written for SQLite and PostgreSQL alike; see `settlement/tables.py` for what each
table means.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_settlement"
down_revision = "0005_eod"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _partners()
    _cycles()
    _entries()


def _partners() -> None:
    op.create_table(
        "settlement_partner",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("ref", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.SmallInteger(), nullable=False),
        sa.Column("display_name", sa.String(120), nullable=False),
        sa.Column("payout_address", sa.String(42), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("id >= 0 AND id <= 4294967295", name="ck_settlement_partner_uint32"),
        sa.CheckConstraint("role >= 0 AND role <= 3", name="ck_settlement_partner_role"),
    )
    op.create_table(
        "settlement_guarantee",
        sa.Column("product_code", sa.String(32), primary_key=True),
        sa.Column(
            "partner_id",
            sa.BigInteger(),
            sa.ForeignKey("settlement_partner.id", name="fk_settlement_guarantee_partner"),
            nullable=False,
        ),
        sa.Column("share_ppm", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "share_ppm > 0 AND share_ppm <= 1000000", name="ck_settlement_guarantee_share"
        ),
    )


def _cycles() -> None:
    op.create_table(
        "settlement_cycle",
        sa.Column("cycle_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("cycle_date", sa.Date(), nullable=False, unique=True),
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
    op.create_table(
        "settlement_cycle_tree",
        sa.Column(
            "cycle_id",
            sa.BigInteger(),
            sa.ForeignKey("settlement_cycle.cycle_id", name="fk_settlement_tree_cycle"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("tree_blob", sa.LargeBinary(), nullable=False),
    )


def _entries() -> None:
    op.create_table(
        "settlement_entry",
        sa.Column("cycle_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("entry_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.SmallInteger(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("source_event_id", sa.BigInteger(), nullable=True),
    )
    op.create_index(
        "ix_settlement_entry_partner", "settlement_entry", ["cycle_id", "partner_id", "entry_id"]
    )
    op.create_table(
        "settlement_position",
        sa.Column("cycle_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("partner_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("net_position_fen", sa.BigInteger(), nullable=False),
        sa.Column("entry_count", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "settlement_event_claim",
        sa.Column("event_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("cycle_id", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_settlement_event_claim_cycle_id", "settlement_event_claim", ["cycle_id"])


def downgrade() -> None:
    for table in (
        "settlement_event_claim",
        "settlement_position",
        "settlement_entry",
        "settlement_cycle_tree",
        "settlement_cycle",
        "settlement_guarantee",
        "settlement_partner",
    ):
        op.drop_table(table)
