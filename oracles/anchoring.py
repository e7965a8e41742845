"""An agreement's anchoring, read in one place: the outbox row that carries it to the
chain, the relayer's transaction, and the agreement as the indexer mirrored it.

Reads only; every function takes a connection and returns typed rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Connection

from node_api.kernel.chain import AgreementStatus
from node_api.kernel.outbox_table import OUTBOX_TABLE
from oracles.tables import CHAIN_AGREEMENT_TABLE, SUBMISSION_TABLE


@dataclass(frozen=True, slots=True)
class QueuedAgreement:
    """The outbox row that opens the agreement on-chain, and what it carries."""

    status: str
    attempts: int
    last_error: str | None
    tx_hash: str | None
    block_number: int | None
    terms_hash: str
    borrower_ref: str
    product_code: int
    limit_fen: int
    apr_bps: int
    opened_at: int


@dataclass(frozen=True, slots=True)
class RelayedTransaction:
    """The relayer's transaction that carries the opening."""

    tx_hash: str
    status: str
    block_number: int | None
    block_hash: str | None


@dataclass(frozen=True, slots=True)
class MirroredAgreement:
    """The agreement as the CreditRegistry shows it (the indexer's mirror)."""

    status: int
    terms_hash: str
    commitment: str
    limit_fen: int
    apr_bps: int
    change_count: int
    opened_block: int
    opened_tx: str
    updated_block: int

    @property
    def status_name(self) -> str:
        """`active` ... `charged_off`; `unknown` for a value the contract does not define."""
        try:
            return AgreementStatus(self.status).name.lower()
        except ValueError:
            return "unknown"


@dataclass(frozen=True, slots=True)
class AgreementAnchoring:
    agreement_id: str
    queued: QueuedAgreement | None
    transaction: RelayedTransaction | None
    mirrored: MirroredAgreement | None


def agreement_business_key(agreement_id: str) -> str:
    """The outbox business key of an agreement's opening (`agreement_open:0x...`)."""
    return f"agreement_open:{agreement_id}"


def fetch_agreement_anchoring(conn: Connection, agreement_id: str) -> AgreementAnchoring | None:
    """What the books and the chain know of `agreement_id` (0x-hex, lower case); None if
    neither knows it."""
    queued = _fetch_queued(conn, agreement_id)
    mirrored = _fetch_mirrored(conn, agreement_id)
    if queued is None and mirrored is None:
        return None
    tx_hash = queued.tx_hash if queued is not None else None
    if tx_hash is None and mirrored is not None:
        tx_hash = mirrored.opened_tx
    transaction = _fetch_transaction(conn, tx_hash) if tx_hash else None
    return AgreementAnchoring(agreement_id, queued, transaction, mirrored)


def _fetch_queued(conn: Connection, agreement_id: str) -> QueuedAgreement | None:
    table = OUTBOX_TABLE
    row = conn.execute(
        select(
            table.c.status,
            table.c.attempts,
            table.c.last_error,
            table.c.tx_hash,
            table.c.block_number,
            table.c.payload,
        ).where(table.c.business_key == agreement_business_key(agreement_id))
    ).first()
    if row is None:
        return None
    payload = row.payload
    return QueuedAgreement(
        status=str(row.status),
        attempts=int(row.attempts),
        last_error=row.last_error,
        tx_hash=row.tx_hash,
        block_number=row.block_number,
        terms_hash=str(payload["terms_hash"]),
        borrower_ref=str(payload["borrower_ref"]),
        product_code=int(payload["product_code"]),
        limit_fen=int(payload["limit_fen"]),
        apr_bps=int(payload["apr_bps"]),
        opened_at=int(payload["opened_at"]),
    )


def _fetch_mirrored(conn: Connection, agreement_id: str) -> MirroredAgreement | None:
    table = CHAIN_AGREEMENT_TABLE
    row = conn.execute(
        select(
            table.c.status,
            table.c.terms_hash,
            table.c.commitment,
            table.c.limit_fen,
            table.c.apr_bps,
            table.c.change_count,
            table.c.opened_block,
            table.c.opened_tx,
            table.c.updated_block,
        ).where(table.c.agreement_id == agreement_id)
    ).first()
    if row is None:
        return None
    return MirroredAgreement(
        status=int(row.status),
        terms_hash=str(row.terms_hash),
        commitment=str(row.commitment),
        limit_fen=int(row.limit_fen),
        apr_bps=int(row.apr_bps),
        change_count=int(row.change_count),
        opened_block=int(row.opened_block),
        opened_tx=str(row.opened_tx),
        updated_block=int(row.updated_block),
    )


def _fetch_transaction(conn: Connection, tx_hash: str) -> RelayedTransaction | None:
    table = SUBMISSION_TABLE
    row = conn.execute(
        select(table.c.status, table.c.block_number, table.c.block_hash).where(
            table.c.tx_hash == tx_hash
        )
    ).first()
    if row is None:
        return None
    return RelayedTransaction(
        tx_hash=tx_hash,
        status=str(row.status),
        block_number=row.block_number,
        block_hash=row.block_hash,
    )
