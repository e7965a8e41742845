"""The indexer's set-based insert (COPY on PostgreSQL, executemany on SQLite) stores exactly
what a plain INSERT stores, refuses a duplicate event like one, and changes nothing then."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from node_api.kernel.db import Database
from oracles.event_store import insert_rows
from oracles.tables import CHAIN_POSITION_TABLE, EVENT_TABLE

AWKWARD_ARGS: dict[str, Any] = {
    "text": 'tab\there, newline\nthere, back\\slash, cr\r, quote" and \\N',
    "unicode": "利息 ✓",
    "big": 2**255 - 1,
    "negative": -(2**200),
    "nested": {"list": [1, None, True, False, "x\ty"]},
}


def _event(log_index: int, args: dict[str, Any]) -> dict[str, Any]:
    return {
        "block_number": 7,
        "block_hash": "0x" + "ab" * 32,
        "log_index": log_index,
        "tx_hash": "0x" + "cd" * 32,
        "contract": "ClearingHouse",
        "event": "CycleProposed",
        "subject": "cycle:20250101",
        "args": args,
    }


def _stored_events(database: Database) -> list[tuple[int, dict[str, Any]]]:
    with database.engine.connect() as conn:
        rows = conn.execute(
            sa.select(EVENT_TABLE.c.log_index, EVENT_TABLE.c.args).order_by(EVENT_TABLE.c.log_index)
        ).all()
    return [(int(index), dict(args)) for index, args in rows]


def test_bulk_insert_round_trips_awkward_text_json_and_nulls(database: Database) -> None:
    events = [_event(0, AWKWARD_ARGS), _event(1, {"empty": ""})]
    positions = [
        {
            "cycle_id": 20250101,
            "partner_id": partner_id,
            "net_position_fen": amount,
            "disputed": partner_id == 2,
            "settled_fen": 0,
            "settled_tx": None if partner_id == 1 else "0x\\t",
        }
        for partner_id, amount in ((1, -500), (2, 500))
    ]

    with database.engine.begin() as conn:
        insert_rows(conn, EVENT_TABLE, events)
        insert_rows(conn, CHAIN_POSITION_TABLE, positions)

    assert _stored_events(database) == [(0, AWKWARD_ARGS), (1, {"empty": ""})]
    with database.engine.connect() as conn:
        stored = conn.execute(
            sa.select(CHAIN_POSITION_TABLE).order_by(CHAIN_POSITION_TABLE.c.partner_id)
        ).mappings()
        assert [dict(row) for row in stored] == positions


def test_RevertWhen_a_bulk_insert_repeats_an_event_nothing_of_its_transaction_stays(
    database: Database,
) -> None:
    with database.engine.begin() as conn:
        insert_rows(conn, EVENT_TABLE, [_event(0, {"first": 1})])

    with pytest.raises(sa.exc.IntegrityError), database.engine.begin() as conn:
        insert_rows(conn, EVENT_TABLE, [_event(1, {"new": 1}), _event(0, {"again": 1})])

    assert _stored_events(database) == [(0, {"first": 1})]
