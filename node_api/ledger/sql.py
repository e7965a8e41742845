"""SQL helpers that differ between SQLite and PostgreSQL, kept in one place.

Locking rule of the whole node (PostgreSQL): a transaction takes row locks in this
order, each group in ascending key order, and never goes back to an earlier group:
1. idempotency keys (by scope, key: `claim_rows` inserts them sorted);
2. credit lines (by line id): the line rows alone, then their limit nodes read by a
   later statement (under READ COMMITTED a statement that waited for a lock sees only
   the locked rows as committed meanwhile). A line's nodes are written only by a
   transaction holding the line's lock, so the line's lock guards them and an UPDATE of
   a node takes its row lock without waiting. Locking every node too (before migration
   0021) cost three more row locks, each a WAL record, a purchase on the hot path;
3. ledger accounts (by account id: `post_batches` locks them with one ordered
   SELECT ... FOR NO KEY UPDATE, or `bulk_update(lock_first=True)` does it in the
   statement that updates them).
Rows that hang off a credit line (purchases, repayments, the line's own accounts) are
only changed while that line is locked. On SQLite the first write of a
transaction takes the database's single write lock, so `begin_write` must run before the
transaction reads anything it relies on.

On PostgreSQL the many-row statements of the hot path are set-based: one array per
column and `unnest`, so a statement's SQL is the same whatever the number of rows and
asyncpg prepares it once per connection. Elsewhere they are plain executemany. The
group-committed authorization batch goes further on PostgreSQL: two database functions
(migration 0016) take the same locks in the same order, keys and lines in the first
(`lending/core/batch_pg.py`), accounts last in the second (`ledger/use_batch.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import ARRAY, Table, TextClause, and_, any_, bindparam, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, CursorResult, Dialect
from sqlalchemy.sql import ColumnElement

from node_api.ledger.schema import business_date_table

SqlValue = int | str | bool | bytes | date | datetime | None
"""A value these helpers bind to a column: BIGINT/INTEGER, VARCHAR/TEXT, BOOLEAN,
BYTEA/BLOB, DATE, TIMESTAMP, or NULL."""
Row = Mapping[str, SqlValue]
"""A table row by column name, as the bulk helpers insert, update or claim it."""


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
    rows: Sequence[Row],
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


_STATEMENTS: dict[tuple[Any, ...], TextClause] = {}
"""Set-based PostgreSQL statements by shape. Their SQL does not depend on the number of
rows (one array per column), so each is prepared once per connection."""


def _cached(key: tuple[Any, ...], build: Callable[[], str]) -> TextClause:
    statement = _STATEMENTS.get(key)
    if statement is None:
        statement = _STATEMENTS.setdefault(key, text(build()))
    return statement


def _unnest(table: Table, columns: Sequence[str], dialect: Dialect) -> str:
    """`unnest(CAST(:a AS BIGINT[]), ...) AS v(a, ...)`. Every name must be a column of
    `table` (`table.c[name]` raises otherwise), so no outside text reaches the SQL."""
    arrays = ", ".join(
        f"CAST(:{name} AS {table.c[name].type.compile(dialect=dialect)}[])" for name in columns
    )
    return f"unnest({arrays}) AS v({', '.join(columns)})"


def column_arrays(
    rows: Sequence[Row], columns: Sequence[str], dialect: Dialect
) -> dict[str, str | list[SqlValue]]:
    """Each column's values as one array parameter: in PostgreSQL's text form for psycopg
    (see `_array_text`); asyncpg takes only lists, and encodes them in C."""
    if dialect.driver != "psycopg":
        return {name: [row[name] for row in rows] for name in columns}
    return {name: _array_text([row[name] for row in rows]) for name in columns}


_NONE = type(None)


def _array_text(values: list[SqlValue]) -> str | list[SqlValue]:
    """PostgreSQL's text form of a one-dimensional array of ints, strings, dates or
    booleans (NULLs allowed), which the statement CASTs to the column's array type; other
    values (bytes, timestamps) stay a list for psycopg to adapt.

    Measured: psycopg adapts a list at 1.2-1.4 us per element (a regex per element);
    joining the text here costs 0.2-0.5 us. Strings are always quoted, with backslash and
    double quote escaped, so any content (commas, braces, "NULL") reads back unchanged.
    """
    kinds = set(map(type, values))
    nullable = _NONE in kinds
    kinds.discard(_NONE)
    if kinds == {int} and not nullable:
        return "{" + ",".join(map(str, values)) + "}"
    if kinds == {str}:
        items = ("NULL" if value is None else _quoted(str(value)) for value in values)
    elif kinds <= {int, date}:
        items = ("NULL" if value is None else str(value) for value in values)
    elif kinds == {bool}:
        items = ("NULL" if value is None else "t" if value else "f" for value in values)
    else:
        return values
    return "{" + ",".join(items) + "}"


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def in_param(dialect_name: str, column: ColumnElement[Any], name: str) -> Any:
    """`column IN :name` with the list bound at execution, for statements built once and
    reused (SQLAlchemy then computes their cache key only once): `= ANY(:name)` on
    PostgreSQL, an expanding IN elsewhere."""
    if dialect_name == "postgresql":
        return column == any_(bindparam(name, type_=ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))


def in_values(conn: Connection, column: ColumnElement[Any], values: Sequence[Any]) -> Any:
    """`column IN (values)`; on PostgreSQL `column = ANY(:array)`, one SQL for any count."""
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(list(values))


def bulk_insert(conn: Connection, table: Table, rows: Sequence[Row]) -> None:
    """Insert many rows: on PostgreSQL one `INSERT ... SELECT FROM unnest(...)`;
    executemany elsewhere."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(table.insert(), list(rows))
        return
    columns = tuple(rows[0])

    def build() -> str:
        # Identifiers come from the table definition; every value is a bound array.
        names, picked = ", ".join(columns), ", ".join("v." + c for c in columns)
        source = _unnest(table, columns, conn.dialect)
        return f"INSERT INTO {table.name} ({names}) SELECT {picked} FROM {source}"  # noqa: S608

    conn.execute(
        _cached((table.name, columns, "insert"), build), column_arrays(rows, columns, conn.dialect)
    )


def _ordered_insert(table: Table, columns: tuple[str, ...], dialect: Dialect) -> str:
    """PostgreSQL: INSERT of the bound arrays' rows in their array order (ORDER BY the
    array position), so a sequence hands out ids and takes locks in that order."""
    names, picked = ", ".join(columns), ", ".join("v." + c for c in columns)
    source = _unnest(table, columns, dialect).replace(
        f") AS v({', '.join(columns)})", f") WITH ORDINALITY AS v({', '.join(columns)}, n)"
    )
    insert = f"INSERT INTO {table.name} ({names}) SELECT {picked} FROM {source}"  # noqa: S608
    return insert + " ORDER BY v.n"


def bulk_insert_returning_ids(conn: Connection, table: Table, rows: Sequence[Row]) -> list[int]:
    """Insert many rows and return their new ids in the order of `rows`.

    On PostgreSQL the rows are inserted in input order (ORDER BY the array position), so
    the ids the sequence hands out ascend in that order (the technique SQLAlchemy's own
    "insertmanyvalues" relies on); elsewhere SQLAlchemy's ordered RETURNING.
    """
    if not rows:
        return []
    if conn.dialect.name != "postgresql":
        statement = table.insert().returning(table.c.id, sort_by_parameter_order=True)
        return [int(row[0]) for row in conn.execute(statement, list(rows))]
    columns = tuple(rows[0])

    def build() -> str:
        return _ordered_insert(table, columns, conn.dialect) + " RETURNING id"

    result = conn.execute(
        _cached((table.name, columns, "insert_ids"), build),
        column_arrays(rows, columns, conn.dialect),
    )
    return sorted(int(row[0]) for row in result)


def claim_rows(
    conn: Connection, table: Table, rows: Sequence[Row], keys: Sequence[str]
) -> list[tuple[Any, ...]]:
    """INSERT ... ON CONFLICT DO NOTHING in key order; return the keys actually inserted.

    Inserting in key order means two transactions claiming overlapping keys wait for
    each other in the same order instead of deadlocking.
    """
    ordered = sorted(rows, key=lambda row: tuple(row[k] for k in keys))
    if conn.dialect.name != "postgresql":
        inserted = insert_ignoring_conflicts(conn, table, ordered, keys, keys)
        return [tuple(row) for row in inserted]
    columns = tuple(ordered[0])

    def build() -> str:
        conflict = f" ON CONFLICT ({', '.join(keys)}) DO NOTHING RETURNING {', '.join(keys)}"
        return _ordered_insert(table, columns, conn.dialect) + conflict

    key = (table.name, columns, tuple(keys), "claim")
    return [
        tuple(row)
        for row in conn.execute(_cached(key, build), column_arrays(ordered, columns, conn.dialect))
    ]


def bulk_update(
    conn: Connection,
    table: Table,
    rows: Sequence[Row],
    *,
    keys: Sequence[str],
    increment: Sequence[str] = (),
    lock_first: bool = False,
) -> None:
    """Update many rows, each matched by `keys`: columns in `increment` are added to, the
    others set. On PostgreSQL one `UPDATE ... FROM unnest(...)`; executemany, in the
    order given, elsewhere.

    The set-based UPDATE locks rows in no particular order, so on PostgreSQL the rows
    must either be locked by this transaction already, or `lock_first` (single-column
    key) locks them first, in key order, in the same statement.
    """
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

    def build() -> str:
        t = table.name
        sets = ", ".join(
            f"{name} = {t}.{name} + v.{name}" if name in increment else f"{name} = v.{name}"
            for name in values
        )
        where = " AND ".join(f"{t}.{name} = v.{name}" for name in keys)
        source = _unnest(table, columns, conn.dialect)
        if not lock_first:
            return f"UPDATE {t} SET {sets} FROM {source} WHERE {where}"  # noqa: S608
        (key,) = keys
        key_array = f"CAST(:{key} AS {table.c[key].type.compile(dialect=conn.dialect)}[])"
        return (
            f"WITH locked AS (SELECT {key} FROM {t} WHERE {key} = ANY({key_array}) "  # noqa: S608
            f"ORDER BY {key} FOR NO KEY UPDATE) "
            f"UPDATE {t} SET {sets} FROM {source} WHERE {where} "
            f"AND v.{key} IN (SELECT {key} FROM locked)"
        )

    key = (table.name, columns, tuple(keys), tuple(increment), lock_first, "update")
    conn.execute(_cached(key, build), column_arrays(rows, columns, conn.dialect))
