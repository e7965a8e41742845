"""The node's side of the audit export: the books' tables as `export_format` records.

Sources, read in one database transaction so the export is one consistent snapshot:

- product versions (`product_version`): code, version, terms hash, stored canonical terms;
  and each agreement's version-2 terms document (`agreement_terms`), in the same record;
- agreements: the openings the books queued for the chain (`oracle_outbox` rows of kind
  `agreement_open`, whose payload is exactly the registry's `AgreementInput`), with the
  transaction and block the relayer recorded once confirmed;
- settlement cycles closed with entries (every state but `empty`, which never goes
  on-chain), from `settlement_cycle`, `settlement_position` and `settlement_entry`, each
  entry as its five leaf values: the stored four and its private salt, derived again from
  the node's leaf secret (`settlement.salts`; the auditor is given every salt, never the
  secret);
- credit-line states that went to the chain (`settlement_line_state`, every state but
  `empty`): the root, count and total the quorum signed, and every agreement's balance
  (`settlement.line_state`), ascending agreement id.

Nothing here reads a personal-data column: customers, applications and the PII vault
are never queried, and partner display names are not exported.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.engine import Connection

from node_api.kernel.db import Database
from node_api.kernel.outbox import OutboxKind
from node_api.kernel.outbox_table import OUTBOX_TABLE, AgreementOpenPayload, OutboxStatus
from node_api.ledger.schema import product_version_table
from node_api.onboarding.provenance_tables import agreement_terms_table
from oracles.audit.export_format import (
    CHUNK_ROWS_MAX,
    AgreementRecord,
    BooksRecord,
    CycleEntriesRecord,
    CycleRecord,
    LineStateLeavesRecord,
    LineStateRecord,
    ManifestRecord,
    ProductTermsRecord,
    encode_export,
)
from settlement.line_state import fetch_line_states, iter_line_state_balances
from settlement.netting import CycleState
from settlement.salts import LeafSalts
from settlement.tables import cycle_table, entry_table, position_table

STREAM_ROWS: Final = 10_000


def iter_product_terms(conn: Connection) -> Iterator[ProductTermsRecord]:
    table = product_version_table
    rows = conn.execute(
        select(
            table.c.product_code, table.c.version, table.c.terms_hash, table.c.terms_json
        ).order_by(table.c.product_code, table.c.version)
    )
    for code, version, terms_hash, terms_json in rows:
        yield ProductTermsRecord(
            product_code=code,
            version=int(version),
            terms_hash=str(terms_hash).lower(),
            canonical_terms=terms_json,
        )


def iter_agreement_terms(conn: Connection) -> Iterator[ProductTermsRecord]:
    """Version-2 agreement terms (decision provenance, `node_api/onboarding/provenance.py`):
    each is the document an agreement's `termsHash` commits to, exported like product
    terms so the terms checks reproduce it, and read by `provenance.models_active`."""
    table = agreement_terms_table
    rows = conn.execution_options(yield_per=STREAM_ROWS).execute(
        select(
            table.c.product_code, table.c.product_version, table.c.terms_hash, table.c.document
        ).order_by(table.c.agreement_id)
    )
    for code, version, terms_hash, document in rows:
        yield ProductTermsRecord(
            product_code=code,
            version=int(version),
            terms_hash=str(terms_hash).lower(),
            canonical_terms=document,
        )


def _agreement(
    payload: AgreementOpenPayload, status: str, tx: str | None, block: int | None
) -> AgreementRecord:
    confirmed = status == OutboxStatus.CONFIRMED.value
    return AgreementRecord(
        agreement_id=str(payload["agreement_id"]).lower(),
        borrower_ref=str(payload["borrower_ref"]).lower(),
        terms_hash=str(payload["terms_hash"]).lower(),
        product_code=int(payload["product_code"]),
        limit_fen=int(payload["limit_fen"]),
        apr_bps=int(payload["apr_bps"]),
        opened_at=int(payload["opened_at"]),
        anchored_tx=tx.lower() if confirmed and tx else None,
        anchored_block=int(block) if confirmed and block is not None else None,
    )


def iter_agreements(conn: Connection) -> Iterator[AgreementRecord]:
    table = OUTBOX_TABLE
    rows = conn.execution_options(yield_per=STREAM_ROWS).execute(
        select(table.c.payload, table.c.status, table.c.tx_hash, table.c.block_number)
        .where(table.c.kind == OutboxKind.AGREEMENT_OPEN.value)
        .order_by(table.c.id)
    )
    for payload, status, tx_hash, block_number in rows:
        yield _agreement(payload, status, tx_hash, block_number)


def _fetch_positions(conn: Connection) -> dict[int, list[tuple[int, int]]]:
    positions: dict[int, list[tuple[int, int]]] = {}
    rows = conn.execute(
        select(
            position_table.c.cycle_id,
            position_table.c.partner_id,
            position_table.c.net_position_fen,
        ).order_by(position_table.c.cycle_id, position_table.c.partner_id)
    )
    for cycle_id, partner_id, net_fen in rows:
        positions.setdefault(int(cycle_id), []).append((int(partner_id), int(net_fen)))
    return positions


def iter_cycles(conn: Connection, salts: LeafSalts) -> Iterator[CycleRecord | CycleEntriesRecord]:
    """Each exported cycle's record, then its entries in entry-id order, in chunks."""
    positions = _fetch_positions(conn)
    cycles = conn.execute(
        select(cycle_table.c.cycle_id, cycle_table.c.entry_count, cycle_table.c.entries_root)
        .where(cycle_table.c.status != CycleState.EMPTY.value)
        .order_by(cycle_table.c.cycle_id)
    ).all()
    for cycle_id, entry_count, entries_root in cycles:
        listed = positions.get(int(cycle_id), [])
        yield CycleRecord(
            cycle_id=int(cycle_id),
            entry_count=int(entry_count),
            entries_root=str(entries_root).lower(),
            partner_ids=[partner for partner, _ in listed],
            net_positions_fen=[net_fen for _, net_fen in listed],
        )
        yield from _iter_entries(conn, int(cycle_id), salts)


def _iter_entries(
    conn: Connection, cycle_id: int, salts: LeafSalts
) -> Iterator[CycleEntriesRecord]:
    table = entry_table
    rows = conn.execution_options(yield_per=STREAM_ROWS).execute(
        select(table.c.entry_id, table.c.partner_id, table.c.kind, table.c.amount_fen)
        .where(table.c.cycle_id == cycle_id)
        .order_by(table.c.entry_id)
    )
    salt = salts.salt
    chunk: list[tuple[int, int, int, int, str]] = []
    for entry_id, partner_id, kind, amount_fen in rows:
        entry, partner = int(entry_id), int(partner_id)
        salt_hex = "0x" + salt(cycle_id, entry, partner).hex()
        chunk.append((entry, partner, int(kind), int(amount_fen), salt_hex))
        if len(chunk) == CHUNK_ROWS_MAX:
            yield CycleEntriesRecord(cycle_id=cycle_id, entries=chunk)
            chunk = []
    if chunk:
        yield CycleEntriesRecord(cycle_id=cycle_id, entries=chunk)


def iter_line_states(conn: Connection) -> Iterator[LineStateRecord | LineStateLeavesRecord]:
    """Each line state that went to the chain, then its balances in chunks."""
    for stored in fetch_line_states(conn):
        assert stored.root is not None
        yield LineStateRecord(
            cycle_id=stored.cycle_id,
            leaf_count=stored.leaf_count,
            total_outstanding_fen=stored.total_outstanding_fen,
            root="0x" + stored.root.hex(),
        )
        chunk: list[tuple[str, int]] = []
        for balance in iter_line_state_balances(conn, stored):
            chunk.append((balance.agreement_hex, balance.outstanding_fen))
            if len(chunk) == CHUNK_ROWS_MAX:
                yield LineStateLeavesRecord(cycle_id=stored.cycle_id, leaves=chunk)
                chunk = []
        if chunk:
            yield LineStateLeavesRecord(cycle_id=stored.cycle_id, leaves=chunk)


def iter_books_records(
    conn: Connection, manifest: dict[str, Any] | None, salts: LeafSalts
) -> Iterator[BooksRecord]:
    """Every record of the export but the header and trailer, in the reference order."""
    if manifest:
        yield ManifestRecord(manifest=manifest)
    yield from iter_product_terms(conn)
    yield from iter_agreement_terms(conn)
    yield from iter_agreements(conn)
    yield from iter_cycles(conn, salts)
    yield from iter_line_states(conn)


def stream_export(
    database: Database, chain_id: int, manifest: dict[str, Any] | None, salts: LeafSalts
) -> Iterator[bytes]:
    """The whole export as NDJSON lines, read in one transaction (a consistent snapshot);
    `salts` are the node's (`LeafSalts.from_settings`), to export every entry's salt."""
    with database.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            yield from encode_export(chain_id, iter_books_records(conn, manifest, salts))
