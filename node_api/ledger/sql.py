"""Small SQL helpers that differ between SQLite and PostgreSQL, kept in one place.

Locking rule of the whole node (PostgreSQL): a transaction takes row locks in this
order, each group in ascending key order, and never goes back to an earlier group:
1. idempotency keys (by scope, key);
2. limit nodes with their credit lines (by limit node id; a line's root node has the
   smallest id of the line);
3. ledger accounts (by account id).
Rows that hang off a credit line (purchases, repayments) are only changed while that
line's limit nodes are locked, so they need no lock of their own. On SQLite the first
write of a transaction takes the database's single write lock, so `begin_write` must
run before the transaction reads anything it relies on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, CursorResult

from node_api.ledger.schema import business_date_table


def begin_write(conn: Connection) -> None:
    """Take the write lock now on SQLite (a write that changes nothing); no-op elsewhere.

    Without it, SQLite runs the transaction's first reads outside any transaction and
    the data they returned may have changed by the time the transaction writes.
    """
    if conn.dialect.name == "sqlite":
        table = business_date_table
        conn.execute(update(table).where(table.c.id == 0).values(as_of=table.c.as_of))


def insert_ignoring_conflicts(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    index_elements: Sequence[str],
    returning: Sequence[str] = (),
) -> CursorResult[Any]:
    """INSERT ... ON CONFLICT DO NOTHING, optionally RETURNING the rows actually inserted."""
    if conn.dialect.name == "postgresql":
        statement: Any = postgresql.insert(table).on_conflict_do_nothing(
            index_elements=list(index_elements)
        )
    else:
        statement = sqlite.insert(table).on_conflict_do_nothing(index_elements=list(index_elements))
    if returning:
        statement = statement.returning(*(table.c[name] for name in returning))
        return conn.execute(statement.values(list(rows)))
    return conn.execute(statement, list(rows))
