"""The oracles' tables: relay submissions, indexed events and the chain mirror.

The outbox and the submissions are the relayer's durable state (books -> chain);
events, block hashes, the checkpoint and the mirror tables are the indexer's
(chain -> books). The mirror tables are a pure fold of the stored events, so a reorg
rollback can rebuild them from what remains.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from node_api.kernel.money import Fen
from node_api.kernel.outbox_table import BigId


class SubmissionStatus(StrEnum):
    """signed (recorded, maybe not broadcast) -> mined -> confirmed | reverted | dropped.

    `dropped` means the nonce was consumed by a transaction that is not this one
    (its items were then re-checked against on-chain state).
    """

    SIGNED = "signed"
    MINED = "mined"
    CONFIRMED = "confirmed"
    REVERTED = "reverted"
    DROPPED = "dropped"


OPEN_SUBMISSION_STATUSES = (SubmissionStatus.SIGNED.value, SubmissionStatus.MINED.value)


class RelaySubmission(SQLModel, table=True):
    """One signed transaction of the relayer, recorded before it is broadcast.

    `raw_tx` is kept so that after a crash the very same transaction (same nonce,
    same hash) is broadcast again rather than a new one: a nonce lands at most once.
    """

    __tablename__ = "relay_submission"
    __table_args__ = (sa.Index("ix_relay_submission_status", "status"),)

    id: int | None = Field(default=None, sa_column=sa.Column(BigId, primary_key=True))
    kind: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    sender: str = Field(sa_column=sa.Column(sa.String(42), nullable=False))
    nonce: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False, index=True))
    tx_hash: str = Field(sa_column=sa.Column(sa.String(66), nullable=False, unique=True))
    raw_tx: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    item_count: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    status: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    block_number: int | None = Field(
        default=None, sa_column=sa.Column(sa.BigInteger, nullable=True)
    )
    block_hash: str | None = Field(default=None, sa_column=sa.Column(sa.String(66), nullable=True))
    gas_used: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, nullable=True))
    created_at: datetime = Field(sa_column=sa.Column(sa.DateTime, nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(sa.DateTime, nullable=False))


class ChainEvent(SQLModel, table=True):
    """One contract event as indexed, stored once per (block hash, log index).

    `subject` names what the event is about (`agreement:0x..`, `cycle:20250131`,
    `partner:7`, `line_state:20250131`), so the mirror of one subject can be refolded.
    """

    __tablename__ = "chain_event"
    __table_args__ = (
        sa.UniqueConstraint("block_hash", "log_index", name="uq_chain_event_block_log"),
        sa.Index("ix_chain_event_block_number", "block_number"),
        sa.Index("ix_chain_event_subject", "subject"),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(BigId, primary_key=True))
    block_number: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    block_hash: str = Field(sa_column=sa.Column(sa.String(66), nullable=False))
    log_index: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    tx_hash: str = Field(sa_column=sa.Column(sa.String(66), nullable=False))
    contract: str = Field(sa_column=sa.Column(sa.String(40), nullable=False))
    event: str = Field(sa_column=sa.Column(sa.String(40), nullable=False))
    subject: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    args: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON, nullable=False))


class IndexedBlock(SQLModel, table=True):
    """The hash of a block the indexer processed (range ends and blocks with events),
    kept to find the fork point when the chain reorganizes."""

    __tablename__ = "indexed_block"

    block_number: int = Field(sa_column=sa.Column(sa.BigInteger, primary_key=True))
    block_hash: str = Field(sa_column=sa.Column(sa.String(66), nullable=False))
    parent_hash: str = Field(sa_column=sa.Column(sa.String(66), nullable=False))


class IndexerCheckpoint(SQLModel, table=True):
    """The last block (number and hash) whose events are all stored, per indexer."""

    __tablename__ = "indexer_checkpoint"

    name: str = Field(sa_column=sa.Column(sa.String(32), primary_key=True))
    block_number: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    block_hash: str = Field(sa_column=sa.Column(sa.String(66), nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(sa.DateTime, nullable=False))


class AnchoredAgreement(SQLModel, table=True):
    """An agreement as the chain shows it (CreditRegistry events folded)."""

    __tablename__ = "anchored_agreement"

    agreement_id: str = Field(sa_column=sa.Column(sa.String(66), primary_key=True))
    borrower_ref: str = Field(sa_column=sa.Column(sa.String(66), nullable=False))
    terms_hash: str = Field(sa_column=sa.Column(sa.String(66), nullable=False))
    commitment: str = Field(sa_column=sa.Column(sa.String(66), nullable=False))
    product_code: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    limit_fen: Fen = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    apr_bps: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    opened_at: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    status: int = Field(sa_column=sa.Column(sa.SmallInteger, nullable=False))
    last_reason_code: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    change_count: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    opened_block: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    opened_tx: str = Field(sa_column=sa.Column(sa.String(66), nullable=False))
    updated_block: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))


class ChainCycle(SQLModel, table=True):
    """A settlement cycle as the ClearingHouse shows it (status values as on-chain:
    1 Proposed, 2 Disputed, 3 Finalized, 4 Funded, 5 Rejected)."""

    __tablename__ = "chain_cycle"

    cycle_id: int = Field(sa_column=sa.Column(sa.BigInteger, primary_key=True))
    entries_root: str = Field(sa_column=sa.Column(sa.String(66), nullable=False))
    entry_count: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    status: int = Field(sa_column=sa.Column(sa.SmallInteger, nullable=False))
    dispute_deadline: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    total_due_fen: Fen = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    funded_fen: Fen = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    claimed_fen: Fen = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    proposed_block: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    proposed_tx: str = Field(sa_column=sa.Column(sa.String(66), nullable=False))
    updated_block: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))


class ChainCyclePosition(SQLModel, table=True):
    """A partner's position in a cycle as on-chain: disputed, funded (debtor) or claimed
    (creditor)."""

    __tablename__ = "chain_cycle_position"

    cycle_id: int = Field(sa_column=sa.Column(sa.BigInteger, primary_key=True))
    partner_id: int = Field(sa_column=sa.Column(sa.BigInteger, primary_key=True))
    net_position_fen: Fen = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    disputed: bool = Field(sa_column=sa.Column(sa.Boolean, nullable=False))
    settled_fen: Fen = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    settled_tx: str | None = Field(default=None, sa_column=sa.Column(sa.String(66), nullable=True))


class ChainLineState(SQLModel, table=True):
    """A committed credit-line state of a cycle (CreditRegistry.LineStateCommitted)."""

    __tablename__ = "chain_line_state"

    cycle_id: int = Field(sa_column=sa.Column(sa.BigInteger, primary_key=True))
    root: str = Field(sa_column=sa.Column(sa.String(66), nullable=False))
    leaf_count: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    total_outstanding_fen: Fen = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    submitter: str = Field(sa_column=sa.Column(sa.String(42), nullable=False))
    block_number: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    tx_hash: str = Field(sa_column=sa.Column(sa.String(66), nullable=False))


class ChainPartner(SQLModel, table=True):
    """A partner as registered on the ClearingHouse."""

    __tablename__ = "chain_partner"

    partner_id: int = Field(sa_column=sa.Column(sa.BigInteger, primary_key=True))
    role: int = Field(sa_column=sa.Column(sa.SmallInteger, nullable=False))
    payout: str = Field(sa_column=sa.Column(sa.String(42), nullable=False))
    active: bool = Field(sa_column=sa.Column(sa.Boolean, nullable=False))
    updated_block: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))


def _table(model: type[SQLModel]) -> sa.Table:
    table: sa.Table = model.__table__  # type: ignore[attr-defined]
    return table


SUBMISSION_TABLE = _table(RelaySubmission)
EVENT_TABLE = _table(ChainEvent)
BLOCK_TABLE = _table(IndexedBlock)
CHECKPOINT_TABLE = _table(IndexerCheckpoint)
CHAIN_AGREEMENT_TABLE = _table(AnchoredAgreement)
CHAIN_CYCLE_TABLE = _table(ChainCycle)
CHAIN_POSITION_TABLE = _table(ChainCyclePosition)
CHAIN_LINE_STATE_TABLE = _table(ChainLineState)
CHAIN_PARTNER_TABLE = _table(ChainPartner)
