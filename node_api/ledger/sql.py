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

from sqlalchemy import Table, TextClause, and_, bindparam, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, CursorResult, Dialect

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


_UNNEST_CACHE: dict[tuple[str, tuple[str, ...], tuple[str, ...], str], TextClause] = {}


def _unnest(table: Table, columns: Sequence[str], dialect: Dialect) -> str:
    """`unnest(CAST(:a AS BIGINT[]), ...) AS v(a, ...)`. Every name must be a column of
    `table` (`table.c[name]` raises otherwise), so no outside text reaches the SQL."""
    arrays = ", ".join(
        f"CAST(:{name} AS {table.c[name].type.compile(dialect=dialect)}[])" for name in columns
    )
    return f"unnest({arrays}) AS v({', '.join(columns)})"


def bulk_insert(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert many rows in one statement on PostgreSQL (`unnest` of one array per column:
    the same SQL whatever the number of rows, so it is prepared once); executemany
    elsewhere."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(table.insert(), list(rows))
        return
    columns = tuple(rows[0])
    key = (table.name, columns, (), "insert")
    statement = _UNNEST_CACHE.get(key)
    if statement is None:
        # Identifiers come from the table definition; every value is a bound array.
        names, picked = ", ".join(columns), ", ".join("v." + c for c in columns)
        source = _unnest(table, columns, conn.dialect)
        sql = f"INSERT INTO {table.name} ({names}) SELECT {picked} FROM {source}"  # noqa: S608
        statement = _UNNEST_CACHE.setdefault(key, text(sql))
    conn.execute(statement, {name: [row[name] for row in rows] for name in columns})


def bulk_update(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    keys: Sequence[str],
    increment: Sequence[str] = (),
) -> None:
    """Update many rows, each matched by `keys`: columns in `increment` are added to,
    the others set. On PostgreSQL one `UPDATE ... FROM unnest(...)` statement, so the
    rows must already be locked by this transaction (the statement locks in no
    particular order); executemany, in the order given, elsewhere."""
    if not rows:
        return
    columns = tuple(rows[0])
    values = [name for name in columns if name not in keys]
    if conn.dialect.name != "postgresql":
        assignments = {
            name: (table.c[name] + bindparam(f"v_{name}"))
            if name in increment
            else bindparam(f"v_{name}")
            for name in values
        }
        match = and_(*(table.c[name] == bindparam(f"v_{name}") for name in keys))
        conn.execute(
            update(table).where(match).values(assignments),
            [{f"v_{name}": row[name] for name in columns} for row in rows],
        )
        return
    key = (table.name, columns, tuple(keys), ",".join(increment))
    statement = _UNNEST_CACHE.get(key)
    if statement is None:
        sets = ", ".join(
            f"{name} = {table.name}.{name} + v.{name}"
            if name in increment
            else f"{name} = v.{name}"
            for name in values
        )
        where = " AND ".join(f"{table.name}.{name} = v.{name}" for name in keys)
        source = _unnest(table, columns, conn.dialect)
        sql = f"UPDATE {table.name} SET {sets} FROM {source} WHERE {where}"  # noqa: S608
        statement = _UNNEST_CACHE.setdefault(key, text(sql))
    conn.execute(statement, {name: [row[name] for row in rows] for name in columns})
