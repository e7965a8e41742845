"""Closing a settlement cycle: freeze, net, build the tree, sign, queue the proposal.

`close_settlement_cycle(database, cycle_date, signers)` is idempotent per cycle and
runs in two durable steps, so a crash between them resumes where it stopped:

1. Freeze (one transaction): claim the cycle's ledger events, allocate them to entries,
   net per partner (Σ = 0, else `CycleNotBalancedError` and nothing is written), build
   the Merkle tree once, and store the cycle, its entries, positions and the tree as one
   blob. A cycle without entries is stored as `empty` and never goes on-chain (the
   ClearingHouse refuses empty cycles).
2. Propose: every signer recomputes the cycle from the books (`recompute_cycle_report`:
   the claimed ledger events, allocated afresh, not the stored entries or tree) and signs
   the EIP-712 report only when it matches; with a quorum, the signatures are stored and
   the proposal and its finalization are queued in the outbox for the relayer.

The cycle id is the business date as `yyyymmdd`, plus `attempt * 10**8` when a date is
settled again after its cycle went void on-chain (`settlement.resettle`). Cycles close in
date order; only a void date's next attempt closes after later dates. Every step
speaks `settlement.netting.ClosedCycle`; its root is `bytes`, written as hex only into
the `entries_root` column (and by `describe_cycle`, for JSON).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date
from typing import TypedDict

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from node_api.kernel.db import Database
from node_api.kernel.errors import ConflictError
from node_api.kernel.money import Fen
from node_api.kernel.outbox import CycleFinalization, enqueue_core
from node_api.ledger.sql import begin_write
from oracles.signers import CycleReport, ReportSources, SignatureGathering, SignerSet
from settlement.allocate_events import compute_cycle_entries
from settlement.entries import SettlementEntry
from settlement.ledger_source import (
    build_allocation_book,
    claim_movements,
    fetch_claimed_movements,
    fetch_unclaimed_movements,
)
from settlement.netting import ClosedCycle, CycleState, close_cycle, get_cycle_attempt
from settlement.partners import fetch_directory, get_utc_now
from settlement.resettle import get_next_cycle_id
from settlement.salts import LeafSalts
from settlement.tables import cycle_table, entry_table, position_table, tree_table

logger = logging.getLogger(__name__)

ENTRY_INSERT_CHUNK = 20_000


class CycleSummary(TypedDict):
    """`describe_cycle`'s JSON form of a cycle (hex root, amounts in fen)."""

    cycle_id: int
    cycle_date: str
    state: str
    signatures: int
    """How many quorum signatures the proposal carries."""
    entries_root: str | None
    entry_count: int
    event_count: int
    partner_count: int
    total_due_fen: Fen


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def fetch_cycle(conn: Connection, cycle_id: int) -> ClosedCycle | None:
    """A stored cycle with its positions, or None."""
    row = conn.execute(select(cycle_table).where(cycle_table.c.cycle_id == cycle_id)).first()
    if row is None:
        return None
    positions = conn.execute(
        select(position_table.c.partner_id, position_table.c.net_position_fen)
        .where(position_table.c.cycle_id == cycle_id)
        .order_by(position_table.c.partner_id)
    ).all()
    values = row._mapping
    root = values["entries_root"]
    return ClosedCycle(
        cycle_id=int(values["cycle_id"]),
        entries_root=None if root is None else bytes.fromhex(str(root)[2:]),
        entry_count=int(values["entry_count"]),
        partner_ids=tuple(int(partner_id) for partner_id, _ in positions),
        net_positions_fen=tuple(Fen(int(amount)) for _, amount in positions),
        state=CycleState(values["status"]),
        event_count=int(values["event_count"]),
        signatures=tuple(bytes.fromhex(s[2:]) for s in values["signatures"] or ()),
    )


def fetch_cycles(conn: Connection, *, limit: int = 100) -> list[ClosedCycle]:
    """The latest cycles, newest first."""
    ids = conn.execute(
        select(cycle_table.c.cycle_id).order_by(cycle_table.c.cycle_id.desc()).limit(limit)
    ).scalars()
    return [cycle for cycle_id in ids if (cycle := fetch_cycle(conn, int(cycle_id)))]


def _check_date_order(conn: Connection, cycle_date: date) -> None:
    later = conn.execute(
        select(func.max(cycle_table.c.cycle_date)).where(cycle_table.c.cycle_date > cycle_date)
    ).scalar_one_or_none()
    if later is not None:
        raise ConflictError(
            f"cycle {later.isoformat()} is already closed; cycles close in date order",
            field="cycle_date",
            code="cycle_out_of_order",
        )


def _store_entries(conn: Connection, entries: Sequence[SettlementEntry]) -> None:
    for start in range(0, len(entries), ENTRY_INSERT_CHUNK):
        rows = [
            {
                "cycle_id": entry.cycle_id,
                "entry_id": entry.entry_id,
                "partner_id": entry.partner_id,
                "kind": int(entry.kind),
                "amount_fen": entry.amount_fen,
                "source_event_id": int(entry.source_ref) if entry.source_ref.isdigit() else None,
            }
            for entry in entries[start : start + ENTRY_INSERT_CHUNK]
        ]
        conn.execute(insert(entry_table), rows)


def store_close(conn: Connection, cycle_date: date, close: ClosedCycle, event_count: int) -> None:
    """Write a cycle just closed: its row, the tree blob, every entry and each position."""
    counts: dict[int, int] = {}
    for entry in close.entries:
        counts[entry.partner_id] = counts.get(entry.partner_id, 0) + 1
    conn.execute(
        insert(cycle_table).values(
            cycle_id=close.cycle_id,
            cycle_date=cycle_date,
            status=CycleState.CLOSED.value,
            entries_root=_hex(close.root),
            entry_count=close.entry_count,
            event_count=event_count,
            partner_count=len(close.partner_ids),
            total_due_fen=close.total_due_fen,
            closed_at=get_utc_now(),
        )
    )
    conn.execute(
        insert(tree_table).values(cycle_id=close.cycle_id, tree_blob=close.tree.to_bytes())
    )
    _store_entries(conn, close.entries)
    conn.execute(
        insert(position_table),
        [
            {
                "cycle_id": close.cycle_id,
                "partner_id": partner_id,
                "net_position_fen": amount,
                "entry_count": counts[partner_id],
            }
            for partner_id, amount in zip(close.partner_ids, close.net_positions_fen, strict=True)
        ],
    )


def _store_empty(conn: Connection, cycle_id: int, cycle_date: date, event_count: int) -> None:
    conn.execute(
        insert(cycle_table).values(
            cycle_id=cycle_id,
            cycle_date=cycle_date,
            status=CycleState.EMPTY.value,
            entries_root=None,
            entry_count=0,
            event_count=event_count,
            partner_count=0,
            total_due_fen=0,
            closed_at=get_utc_now(),
        )
    )


def freeze_cycle(database: Database, cycle_date: date, salts: LeafSalts) -> ClosedCycle:
    """Step 1 (see module doc): the frozen cycle, made now or found from before."""
    with database.engine.begin() as conn:
        begin_write(conn)
        cycle_id = get_next_cycle_id(conn, cycle_date)
        existing = fetch_cycle(conn, cycle_id)
        if existing is not None:
            return existing
        if get_cycle_attempt(cycle_id) == 0:
            _check_date_order(conn, cycle_date)
        movements = fetch_unclaimed_movements(conn, cycle_date)
        book = build_allocation_book(conn, movements, fetch_directory(conn))
        entries = compute_cycle_entries(cycle_id, movements, book, salts)
        claim_movements(conn, cycle_id, movements)
        if entries:
            store_close(conn, cycle_date, close_cycle(cycle_id, entries), len(movements))
        else:
            _store_empty(conn, cycle_id, cycle_date, len(movements))
        frozen = fetch_cycle(conn, cycle_id)
    assert frozen is not None
    logger.info(
        "settlement cycle frozen",
        extra={
            "cycle_id": cycle_id,
            "entries": frozen.entry_count,
            "events": frozen.event_count,
            "partners": len(frozen.partner_ids),
        },
    )
    return frozen


def recompute_cycle_report(
    database: Database, cycle_id: int, salts: LeafSalts
) -> CycleReport | None:
    """The cycle as the books say it is: the events the cycle claimed, allocated, netted
    and hashed afresh. None when the books hold no such non-empty cycle. This is what a
    signer checks a report against; it never reads the stored entries or tree."""
    with database.engine.connect() as conn:
        stored = fetch_cycle(conn, cycle_id)
        if stored is None or stored.state is CycleState.EMPTY:
            return None
        movements = fetch_claimed_movements(conn, cycle_id)
        book = build_allocation_book(conn, movements, fetch_directory(conn))
        entries = compute_cycle_entries(cycle_id, movements, book, salts)
    if not entries:
        return None
    return close_cycle(cycle_id, entries).report


def settlement_report_sources(database: Database, salts: LeafSalts) -> ReportSources:
    """What in-process signers recompute cycle reports from: these books, salted with the
    node's leaf secret."""
    return ReportSources(cycle=lambda cycle_id: recompute_cycle_report(database, cycle_id, salts))


def _store_proposal(
    database: Database, cycle: ClosedCycle, gathering: SignatureGathering
) -> ClosedCycle:
    proposal = cycle.to_proposal(gathering.signatures)
    with database.engine.begin() as conn:
        begin_write(conn)
        current = fetch_cycle(conn, cycle.cycle_id)
        if current is not None and current.state is CycleState.PROPOSED:
            return current
        conn.execute(
            update(cycle_table)
            .where(cycle_table.c.cycle_id == cycle.cycle_id)
            .values(
                status=CycleState.PROPOSED.value,
                signatures=[_hex(signature) for signature in gathering.signatures],
                signer_addresses=list(gathering.signers),
                proposed_at=get_utc_now(),
            )
        )
        enqueue_core(conn, [proposal, CycleFinalization(cycle.cycle_id)])
        proposed = fetch_cycle(conn, cycle.cycle_id)
    assert proposed is not None
    return proposed


def propose_cycle(database: Database, cycle: ClosedCycle, signers: SignerSet) -> ClosedCycle:
    """Step 2 (see module doc); QuorumNotReachedError when too few signers agree."""
    if cycle.state is not CycleState.CLOSED:
        return cycle
    gathering = signers.gather_cycle_signatures(cycle.report)
    if gathering.refusals:
        logger.warning(
            "signers refused a cycle report",
            extra={"cycle_id": cycle.cycle_id, "refusals": len(gathering.refusals)},
        )
    proposed = _store_proposal(database, cycle, gathering)
    logger.info(
        "settlement cycle proposed",
        extra={"cycle_id": cycle.cycle_id, "signatures": len(gathering.signatures)},
    )
    return proposed


def close_settlement_cycle(
    database: Database,
    cycle_date: date,
    signers: SignerSet | None = None,
    *,
    salts: LeafSalts,
) -> ClosedCycle:
    """Freeze the cycle of `cycle_date` and, given signers, sign and queue its proposal.

    Idempotent: a frozen cycle is never recomputed, a proposed one never re-signed. Two
    closers racing on PostgreSQL collide on the event claims; the loser reads the winner's
    cycle.
    """
    try:
        frozen = freeze_cycle(database, cycle_date, salts)
    except IntegrityError:
        with database.engine.connect() as conn:
            found = fetch_cycle(conn, get_next_cycle_id(conn, cycle_date))
        if found is None:
            raise
        frozen = found
    if signers is None:
        return frozen
    return propose_cycle(database, frozen, signers)


def describe_cycle(cycle: ClosedCycle) -> CycleSummary:
    """A JSON-ready summary (hex root, amounts in fen)."""
    return {
        "cycle_id": cycle.cycle_id,
        "cycle_date": cycle.cycle_date.isoformat(),
        "state": cycle.state.value,
        "entries_root": None if cycle.entries_root is None else _hex(cycle.entries_root),
        "entry_count": cycle.entry_count,
        "event_count": cycle.event_count,
        "partner_count": len(cycle.partner_ids),
        "total_due_fen": cycle.total_due_fen,
        "signatures": len(cycle.signatures),
    }
