"""Oracles: outbox, relay submissions, indexed events, block hashes, checkpoint, chain mirror.

Revision ID: 0003_oracles
Revises: 0002_ledger_lending
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_oracles"
down_revision = "0002_ledger_lending"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    _create_relayer_tables()
    _create_indexer_tables()
    _create_mirror_tables()


def _create_relayer_tables() -> None:
    op.create_table(
        "oracle_outbox",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("business_key", sa.String(160), nullable=False, unique=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("tx_hash", sa.String(66), nullable=True),
        sa.Column("tx_nonce", sa.BigInteger(), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("available_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_oracle_outbox_kind_status_id", "oracle_outbox", ["kind", "status", "id"])
    op.create_index("ix_oracle_outbox_tx_hash", "oracle_outbox", ["tx_hash"])
    op.create_table(
        "relay_submission",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("sender", sa.String(42), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(66), nullable=False, unique=True),
        sa.Column("raw_tx", sa.Text(), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("block_hash", sa.String(66), nullable=True),
        sa.Column("gas_used", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_relay_submission_status", "relay_submission", ["status"])
    op.create_index("ix_relay_submission_nonce", "relay_submission", ["nonce"])


def _create_indexer_tables() -> None:
    op.create_table(
        "chain_event",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("tx_hash", sa.String(66), nullable=False),
        sa.Column("contract", sa.String(40), nullable=False),
        sa.Column("event", sa.String(40), nullable=False),
        sa.Column("subject", sa.String(100), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.UniqueConstraint("block_hash", "log_index", name="uq_chain_event_block_log"),
    )
    op.create_index("ix_chain_event_block_number", "chain_event", ["block_number"])
    op.create_index("ix_chain_event_subject", "chain_event", ["subject"])
    op.create_table(
        "indexed_block",
        sa.Column("block_number", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("block_hash", sa.String(66), nullable=False),
        sa.Column("parent_hash", sa.String(66), nullable=False),
    )
    op.create_table(
        "indexer_checkpoint",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(66), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )


def _create_mirror_tables() -> None:
    op.create_table(
        "anchored_agreement",
        sa.Column("agreement_id", sa.String(66), primary_key=True),
        sa.Column("borrower_ref", sa.String(66), nullable=False),
        sa.Column("terms_hash", sa.String(66), nullable=False),
        sa.Column("commitment", sa.String(66), nullable=False),
        sa.Column("product_code", sa.BigInteger(), nullable=False),
        sa.Column("limit_fen", sa.BigInteger(), nullable=False),
        sa.Column("apr_bps", sa.BigInteger(), nullable=False),
        sa.Column("opened_at", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("last_reason_code", sa.Integer(), nullable=False),
        sa.Column("change_count", sa.Integer(), nullable=False),
        sa.Column("opened_block", sa.BigInteger(), nullable=False),
        sa.Column("opened_tx", sa.String(66), nullable=False),
        sa.Column("updated_block", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "chain_cycle",
        sa.Column("cycle_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("entries_root", sa.String(66), nullable=False),
        sa.Column("entry_count", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("dispute_deadline", sa.BigInteger(), nullable=False),
        sa.Column("total_due_fen", sa.BigInteger(), nullable=False),
        sa.Column("funded_fen", sa.BigInteger(), nullable=False),
        sa.Column("claimed_fen", sa.BigInteger(), nullable=False),
        sa.Column("proposed_block", sa.BigInteger(), nullable=False),
        sa.Column("proposed_tx", sa.String(66), nullable=False),
        sa.Column("updated_block", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "chain_cycle_position",
        sa.Column("cycle_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("partner_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("net_position_fen", sa.BigInteger(), nullable=False),
        sa.Column("disputed", sa.Boolean(), nullable=False),
        sa.Column("settled_fen", sa.BigInteger(), nullable=False),
        sa.Column("settled_tx", sa.String(66), nullable=True),
    )
    op.create_table(
        "chain_line_state",
        sa.Column("cycle_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("root", sa.String(66), nullable=False),
        sa.Column("leaf_count", sa.BigInteger(), nullable=False),
        sa.Column("total_outstanding_fen", sa.BigInteger(), nullable=False),
        sa.Column("submitter", sa.String(42), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(66), nullable=False),
    )
    op.create_table(
        "chain_partner",
        sa.Column("partner_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("role", sa.SmallInteger(), nullable=False),
        sa.Column("payout", sa.String(42), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_block", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "chain_partner",
        "chain_line_state",
        "chain_cycle_position",
        "chain_cycle",
        "anchored_agreement",
        "indexer_checkpoint",
        "indexed_block",
        "chain_event",
        "relay_submission",
        "oracle_outbox",
    ):
        op.drop_table(table)
