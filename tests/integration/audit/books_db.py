"""Write a scenario's books into the node's tables, as the node itself would hold them:
product versions, agreement openings in the outbox (confirmed), settlement cycles with
their positions and entries, and the line states with their balances."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa

from node_api.kernel.db import Database
from node_api.kernel.outbox import AgreementOpening, enqueue_core
from node_api.kernel.outbox_table import OUTBOX_TABLE, OutboxStatus
from node_api.lending.product_versions import register_product_version
from node_api.lending.products import parse_product_terms
from oracles.audit.export_format import AgreementRecord
from settlement.line_state import LineBalance, LineStateStatus, build_line_state
from settlement.netting import ClosedCycle
from settlement.tables import cycle_table, entry_table, line_state_table, position_table
from tests.integration.audit.scenario import BooksData
from tests.unit.lending.samples import installment_product_data, revolving_product_data

CLOSED_AT = datetime(2025, 1, 31, 23, 0)


def _opening(record: AgreementRecord) -> AgreementOpening:
    return AgreementOpening(
        agreement_id=bytes.fromhex(record.agreement_id[2:]),
        borrower_ref=bytes.fromhex(record.borrower_ref[2:]),
        terms_hash=bytes.fromhex(record.terms_hash[2:]),
        product_code=record.product_code,
        limit_fen=record.limit_fen,
        apr_bps=record.apr_bps,
        opened_at=record.opened_at,
    )


def _store_cycle(conn: sa.Connection, close: ClosedCycle) -> None:
    cycle_id = close.cycle_id
    conn.execute(
        sa.insert(cycle_table).values(
            cycle_id=cycle_id,
            cycle_date=date(cycle_id // 10_000, cycle_id // 100 % 100, cycle_id % 100),
            status="proposed",
            entries_root="0x" + close.root.hex(),
            entry_count=close.entry_count,
            event_count=close.entry_count,
            partner_count=len(close.partner_ids),
            total_due_fen=sum(n for n in close.net_positions_fen if n > 0),
            closed_at=CLOSED_AT,
        )
    )
    conn.execute(
        sa.insert(position_table),
        [
            {"cycle_id": cycle_id, "partner_id": p, "net_position_fen": n, "entry_count": 1}
            for p, n in zip(close.partner_ids, close.net_positions_fen, strict=True)
        ],
    )
    conn.execute(
        sa.insert(entry_table),
        [
            {
                "cycle_id": cycle_id,
                "entry_id": e.entry_id,
                "partner_id": e.partner_id,
                "kind": int(e.kind),
                "amount_fen": e.amount_fen,
            }
            for e in close.entries
        ],
    )


def _store_line_state(conn: sa.Connection, cycle_id: int, leaves: list[tuple[str, int]]) -> None:
    balances = [LineBalance(bytes.fromhex(a[2:]), fen) for a, fen in leaves]
    state = build_line_state(cycle_id, balances)
    assert state is not None
    conn.execute(
        sa.insert(line_state_table).values(
            cycle_id=cycle_id,
            cycle_date=date(cycle_id // 10_000, cycle_id // 100 % 100, cycle_id % 100),
            status=LineStateStatus.QUEUED,
            root="0x" + state.root.hex(),
            leaf_count=state.leaf_count,
            total_outstanding_fen=state.total_outstanding_fen,
            signatures=[],
            signer_addresses=[],
            leaves_blob=state.leaves,
            tree_blob=state.tree.to_bytes(),
            created_at=CLOSED_AT,
        )
    )


def store_books(database: Database, books: BooksData) -> None:
    with database.engine.begin() as conn:
        for data in (revolving_product_data(), installment_product_data()):
            register_product_version(conn, parse_product_terms(data))
        enqueue_core(conn, [_opening(record) for record in books.agreements])
        for record in books.agreements:
            conn.execute(
                sa.update(OUTBOX_TABLE)
                .where(OUTBOX_TABLE.c.business_key == f"agreement_open:{record.agreement_id}")
                .values(
                    status=OutboxStatus.CONFIRMED.value,
                    tx_hash=record.anchored_tx,
                    block_number=record.anchored_block,
                )
            )
        for close in books.cycles.values():
            _store_cycle(conn, close)
        for cycle_id, leaves in books.line_states.items():
            _store_line_state(conn, cycle_id, leaves)
