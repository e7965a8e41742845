"""The settlement tables: partners, guarantees, closed cycles, their entries and trees, and
the credit-line state committed per settled business date.

A closed cycle is frozen: `settlement_cycle` holds what was signed and proposed (root,
entry count, signatures), `settlement_entry` one row per entry (the partner API pages
through them; an entry's leaf salt is not stored but derived again from the node's
secret, `settlement.salts`), `settlement_position` each partner's net position, and
`settlement_cycle_tree` the whole Merkle tree as one blob, from which every proof is
served on demand (never one stored proof per entry). `settlement_event_claim` records
which cycle took each ledger settlement event, so every event is cleared exactly once
even when it is committed after the cycle of its business date closed.

Amounts are BIGINT fen, signed from the partner's side (positive = receives). Partner
ids are the uint32 ids the ClearingHouse knows; `ref` is the id the books use in
`settlement_event.partner_ref` and in product funding splits.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import SQLModel

metadata = SQLModel.metadata

partner_table = sa.Table(
    "settlement_partner",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("ref", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.SmallInteger, nullable=False),
    sa.Column("display_name", sa.String(120), nullable=False),
    sa.Column("payout_address", sa.String(42), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.CheckConstraint("id >= 0 AND id <= 4294967295", name="ck_settlement_partner_uint32"),
    sa.CheckConstraint("role >= 0 AND role <= 3", name="ck_settlement_partner_role"),
)

guarantee_table = sa.Table(
    "settlement_guarantee",
    metadata,
    sa.Column("product_code", sa.String(32), primary_key=True),
    sa.Column(
        "partner_id",
        sa.BigInteger,
        sa.ForeignKey("settlement_partner.id", name="fk_settlement_guarantee_partner"),
        nullable=False,
    ),
    sa.Column("share_ppm", sa.Integer, nullable=False),
    sa.CheckConstraint(
        "share_ppm > 0 AND share_ppm <= 1000000", name="ck_settlement_guarantee_share"
    ),
)

cycle_table = sa.Table(
    "settlement_cycle",
    metadata,
    sa.Column("cycle_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("cycle_date", sa.Date, nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("entries_root", sa.String(66), nullable=True),
    sa.Column("entry_count", sa.BigInteger, nullable=False),
    sa.Column("event_count", sa.BigInteger, nullable=False),
    sa.Column("partner_count", sa.Integer, nullable=False),
    sa.Column("total_due_fen", sa.BigInteger, nullable=False),
    sa.Column("signatures", sa.JSON, nullable=True),
    sa.Column("signer_addresses", sa.JSON, nullable=True),
    sa.Column("closed_at", sa.DateTime, nullable=False),
    sa.Column("proposed_at", sa.DateTime, nullable=True),
)

tree_table = sa.Table(
    "settlement_cycle_tree",
    metadata,
    sa.Column(
        "cycle_id",
        sa.BigInteger,
        sa.ForeignKey("settlement_cycle.cycle_id", name="fk_settlement_tree_cycle"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("tree_blob", sa.LargeBinary, nullable=False),
)

entry_table = sa.Table(
    "settlement_entry",
    metadata,
    sa.Column("cycle_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("entry_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("partner_id", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.SmallInteger, nullable=False),
    sa.Column("amount_fen", sa.BigInteger, nullable=False),
    sa.Column("source_event_id", sa.BigInteger, nullable=True),
    sa.Index("ix_settlement_entry_partner", "cycle_id", "partner_id", "entry_id"),
)

position_table = sa.Table(
    "settlement_position",
    metadata,
    sa.Column("cycle_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("partner_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("net_position_fen", sa.BigInteger, nullable=False),
    sa.Column("entry_count", sa.BigInteger, nullable=False),
)

event_claim_table = sa.Table(
    "settlement_event_claim",
    metadata,
    sa.Column("event_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("cycle_id", sa.BigInteger, nullable=False, index=True),
)

line_state_table = sa.Table(
    "settlement_line_state",
    metadata,
    sa.Column("cycle_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("cycle_date", sa.Date, nullable=False, unique=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("root", sa.String(66), nullable=True),
    sa.Column("leaf_count", sa.BigInteger, nullable=False),
    sa.Column("total_outstanding_fen", sa.BigInteger, nullable=False),
    sa.Column("signatures", sa.JSON, nullable=True),
    sa.Column("signer_addresses", sa.JSON, nullable=True),
    sa.Column("leaves_blob", sa.LargeBinary, nullable=True),
    sa.Column("tree_blob", sa.LargeBinary, nullable=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
)
"""The credit-line state of each settled business date (`settlement.line_state`): what
was signed and queued (root, count, total, the quorum's signatures), the balances as one
blob (`leaves_blob`: 32-byte agreement id + 8-byte outstanding fen, ascending id) and the
Merkle tree over them as one blob, from which every balance proof is served. A date with
no agreement is stored as `empty` (no root, no blobs) and never goes on-chain."""

SETTLEMENT_TABLES: tuple[sa.Table, ...] = (
    partner_table,
    guarantee_table,
    cycle_table,
    tree_table,
    entry_table,
    position_table,
    event_claim_table,
    line_state_table,
)
"""Every settlement table, in creation order (foreign keys first)."""
