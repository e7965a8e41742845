"""Settling a business date again after its cycle went void on-chain.

A cycle is void when an upheld dispute rejected it or when it passed its funding deadline
unfunded and was declared defaulted (then every debtor that funded took its deposit back
with `refund`; nobody was paid). Either way the obligations it carried are still owed, so
the books settle them again: the void cycle keeps its entries and tree for the record, its
claims on the ledger's settlement events are released, and the same business date is
closed again under the next attempt's cycle id (`attempt * 10**8 + yyyymmdd`, see
`settlement.netting.get_cycle_id`), signed and proposed like any cycle.

Everything here is idempotent and crash-safe: voiding is one transaction, and a date whose
latest cycle is void is closed again by the next settlement pass.
"""

from __future__ import annotations

import logging
from datetime import date

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.engine import Connection

from node_api.kernel.chain import CycleStatus
from node_api.kernel.db import Database
from oracles.tables import CHAIN_CYCLE_TABLE
from settlement.netting import CycleState, get_cycle_attempt, get_cycle_date, get_cycle_id
from settlement.tables import cycle_table, event_claim_table

logger = logging.getLogger(__name__)

_VOID_ON_CHAIN = {
    int(CycleStatus.REJECTED): CycleState.REJECTED,
    int(CycleStatus.DEFAULTED): CycleState.DEFAULTED,
}


def fetch_latest_attempt(conn: Connection, cycle_date: date) -> tuple[int, CycleState] | None:
    """The id and book state of the date's latest cycle, or None if it has none."""
    row = conn.execute(
        select(cycle_table.c.cycle_id, cycle_table.c.status)
        .where(cycle_table.c.cycle_date == cycle_date)
        .order_by(cycle_table.c.cycle_id.desc())
        .limit(1)
    ).first()
    return None if row is None else (int(row[0]), CycleState(row[1]))


def get_next_cycle_id(conn: Connection, cycle_date: date) -> int:
    """The id under which `cycle_date` is (or is to be) settled: its live cycle's, else the
    attempt after its void one, else the date's first."""
    latest = fetch_latest_attempt(conn, cycle_date)
    if latest is None:
        return get_cycle_id(cycle_date)
    cycle_id, state = latest
    if state.is_void:
        return get_cycle_id(cycle_date, get_cycle_attempt(cycle_id) + 1)
    return cycle_id


def void_cycle(database: Database, cycle_id: int, state: CycleState) -> bool:
    """Mark a proposed book cycle void (`state`) and release its settlement events for the
    date's next attempt. False when it was not a proposed cycle (already void, say)."""
    assert state.is_void
    with database.engine.begin() as conn:
        changed = conn.execute(
            update(cycle_table)
            .where(
                and_(
                    cycle_table.c.cycle_id == cycle_id,
                    cycle_table.c.status == CycleState.PROPOSED.value,
                )
            )
            .values(status=state.value)
        ).rowcount
        if changed != 1:
            return False
        released = conn.execute(
            delete(event_claim_table).where(event_claim_table.c.cycle_id == cycle_id)
        ).rowcount
    logger.info(
        "settlement cycle void; its events are released",
        extra={"cycle_id": cycle_id, "state": state.value, "events": released},
    )
    return True


def void_cycles_void_on_chain(database: Database) -> list[int]:
    """Void every proposed book cycle the chain's mirror shows rejected or defaulted."""
    statement = (
        select(cycle_table.c.cycle_id, CHAIN_CYCLE_TABLE.c.status)
        .join(CHAIN_CYCLE_TABLE, CHAIN_CYCLE_TABLE.c.cycle_id == cycle_table.c.cycle_id)
        .where(
            and_(
                cycle_table.c.status == CycleState.PROPOSED.value,
                CHAIN_CYCLE_TABLE.c.status.in_(list(_VOID_ON_CHAIN)),
            )
        )
        .order_by(cycle_table.c.cycle_id)
    )
    with database.engine.connect() as conn:
        found = [(int(cycle_id), int(status)) for cycle_id, status in conn.execute(statement)]
    return [
        cycle_id
        for cycle_id, status in found
        if void_cycle(database, cycle_id, _VOID_ON_CHAIN[status])
    ]


def fetch_dates_to_resettle(database: Database) -> list[date]:
    """Business dates whose latest cycle is void, oldest first."""
    latest = (
        select(func.max(cycle_table.c.cycle_id).label("cycle_id"))
        .group_by(cycle_table.c.cycle_date)
        .subquery()
    )
    statement = (
        select(cycle_table.c.cycle_id)
        .join(latest, latest.c.cycle_id == cycle_table.c.cycle_id)
        .where(cycle_table.c.status.in_([CycleState.REJECTED.value, CycleState.DEFAULTED.value]))
        .order_by(cycle_table.c.cycle_date)
    )
    with database.engine.connect() as conn:
        return [get_cycle_date(int(cycle_id)) for cycle_id in conn.execute(statement).scalars()]
