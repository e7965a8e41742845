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

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Table,
)
from sqlmodel import SQLModel

metadata = SQLModel.metadata

partner_table = Table(
    "settlement_partner",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("ref", String(64), nullable=False, unique=True),
    Column("role", SmallInteger, nullable=False),
    Column("display_name", String(120), nullable=False),
    Column("payout_address", String(42), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_at", DateTime, nullable=False),
    CheckConstraint("id >= 0 AND id <= 4294967295", name="ck_settlement_partner_uint32"),
    CheckConstraint("role >= 0 AND role <= 3", name="ck_settlement_partner_role"),
)

guarantee_table = Table(
    "settlement_guarantee",
    metadata,
    Column("product_code", String(32), primary_key=True),
    Column(
        "partner_id",
        BigInteger,
        ForeignKey("settlement_partner.id", name="fk_settlement_guarantee_partner"),
        nullable=False,
    ),
    Column("share_ppm", Integer, nullable=False),
    CheckConstraint("share_ppm > 0 AND share_ppm <= 1000000", name="ck_settlement_guarantee_share"),
)

cycle_table = Table(
    "settlement_cycle",
    metadata,
    Column("cycle_id", BigInteger, primary_key=True, autoincrement=False),
    Column("cycle_date", Date, nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("entries_root", String(66), nullable=True),
    Column("entry_count", BigInteger, nullable=False),
    Column("event_count", BigInteger, nullable=False),
    Column("partner_count", Integer, nullable=False),
    Column("total_due_fen", BigInteger, nullable=False),
    Column("signatures", JSON, nullable=True),
    Column("signer_addresses", JSON, nullable=True),
    Column("closed_at", DateTime, nullable=False),
    Column("proposed_at", DateTime, nullable=True),
)

tree_table = Table(
    "settlement_cycle_tree",
    metadata,
    Column(
        "cycle_id",
        BigInteger,
        ForeignKey("settlement_cycle.cycle_id", name="fk_settlement_tree_cycle"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("tree_blob", LargeBinary, nullable=False),
)

entry_table = Table(
    "settlement_entry",
    metadata,
    Column("cycle_id", BigInteger, primary_key=True, autoincrement=False),
    Column("entry_id", BigInteger, primary_key=True, autoincrement=False),
    Column("partner_id", BigInteger, nullable=False),
    Column("kind", SmallInteger, nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("source_event_id", BigInteger, nullable=True),
    Index("ix_settlement_entry_partner", "cycle_id", "partner_id", "entry_id"),
)

position_table = Table(
    "settlement_position",
    metadata,
    Column("cycle_id", BigInteger, primary_key=True, autoincrement=False),
    Column("partner_id", BigInteger, primary_key=True, autoincrement=False),
    Column("net_position_fen", BigInteger, nullable=False),
    Column("entry_count", BigInteger, nullable=False),
)

event_claim_table = Table(
    "settlement_event_claim",
    metadata,
    Column("event_id", BigInteger, primary_key=True, autoincrement=False),
    Column("cycle_id", BigInteger, nullable=False, index=True),
)

line_state_table = Table(
    "settlement_line_state",
    metadata,
    Column("cycle_id", BigInteger, primary_key=True, autoincrement=False),
    Column("cycle_date", Date, nullable=False, unique=True),
    Column("status", String(16), nullable=False),
    Column("root", String(66), nullable=True),
    Column("leaf_count", BigInteger, nullable=False),
    Column("total_outstanding_fen", BigInteger, nullable=False),
    Column("signatures", JSON, nullable=True),
    Column("signer_addresses", JSON, nullable=True),
    Column("leaves_blob", LargeBinary, nullable=True),
    Column("tree_blob", LargeBinary, nullable=True),
    Column("created_at", DateTime, nullable=False),
)
"""The credit-line state of each settled business date (`settlement.line_state`): what
was signed and queued (root, count, total, the quorum's signatures), the balances as one
blob (`leaves_blob`: 32-byte agreement id + 8-byte outstanding fen, ascending id) and the
Merkle tree over them as one blob, from which every balance proof is served. A date with
no agreement is stored as `empty` (no root, no blobs) and never goes on-chain."""

SETTLEMENT_TABLES: tuple[Table, ...] = (
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
