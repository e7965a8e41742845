"""Set-based statements over thousands of rows, one round trip each.

On PostgreSQL a list of ids is one array parameter (`= ANY(:ids)`) and many rows are
inserted or updated from parallel arrays (`unnest`), so a statement's text stays short
and the same whatever the number of rows (a thousand-placeholder statement costs more
to build and parse than to run). SQLite gets the plain `IN (...)` and executemany
equivalents; the results are the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Integer,
    SmallInteger,
    String,
    Table,
    any_,
    bindparam,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement

_PG_TYPES: tuple[tuple[type[Any], str], ...] = (
    (SmallInteger, "smallint"),
    (BigInteger, "bigint"),
    (Integer, "bigint"),
    (Boolean, "boolean"),
    (Date, "date"),
    (String, "text"),
)


def is_postgresql(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def _element(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    text_value = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text_value}"'


def to_array_literal(values: Iterable[Any]) -> str:
    """A PostgreSQL array literal (`{1,2,NULL}`, `{"a","b"}`) the server casts to the
    column's array type. Built with one join instead of the driver's per-element array
    adaptation, which costs more than the statement it feeds."""
    return "{" + ",".join(map(_element, values)) + "}"


def match_ids(conn: Connection, column: Any, ids: Sequence[int]) -> ColumnElement[bool]:
    """`column IN ids`, as one array parameter on PostgreSQL."""
    if is_postgresql(conn):
        # A typed array parameter, not a literal: the planner then estimates the match
        # like an IN list and keeps using the index.
        values = bindparam(None, list(ids), type_=ARRAY(BigInteger), unique=True)
        return column == any_(values)  # type: ignore[no-any-return]
    return column.in_(list(ids))  # type: ignore[no-any-return]


def match_values(conn: Connection, column: Any, values: Sequence[str]) -> ColumnElement[bool]:
    """`column IN values` for strings, as one array parameter on PostgreSQL."""
    if is_postgresql(conn):
        param = bindparam(None, list(values), type_=ARRAY(String), unique=True)
        return column == any_(param)  # type: ignore[no-any-return]
    return column.in_(list(values))  # type: ignore[no-any-return]


def _pg_type(table: Table, name: str) -> str:
    column_type = table.c[name].type
    for kind, sql in _PG_TYPES:
        if isinstance(column_type, kind):
            return sql
    raise TypeError(f"no array type for {table.name}.{name}")


def _column_literal(values: list[Any], pg_type: str) -> str:
    """`to_array_literal` for one column; numbers, dates and booleans need no quoting, so
    they are joined directly (`str` never writes "None" inside them)."""
    if pg_type == "text":
        return to_array_literal(values)
    return "{" + ",".join(map(str, values)).replace("None", "NULL") + "}"


def _arrays(
    table: Table, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]
) -> dict[str, str]:
    return {
        f"a_{name}": _column_literal([row[name] for row in rows], _pg_type(table, name))
        for name in columns
    }


def insert_rows(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    returning: Sequence[str] = (),
) -> list[tuple[Any, ...]]:
    """Insert `rows` (all with the same keys); return the `returning` columns of the new
    rows, in no particular order (callers match them by a unique column)."""
    if not rows:
        return []
    columns = list(rows[0])
    if not is_postgresql(conn):
        if not returning:
            conn.execute(table.insert(), list(rows))
            return []
        statement = table.insert().returning(*(table.c[name] for name in returning))
        return [tuple(row) for row in conn.execute(statement, list(rows))]
    casts = ", ".join(f"CAST(:a_{name} AS {_pg_type(table, name)}[])" for name in columns)
    # Table and column names come from the table definitions, never from input.
    sql = f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT * FROM unnest({casts})"  # noqa: S608
    if returning:
        sql += f" RETURNING {', '.join(returning)}"
    result = conn.execute(text(sql), _arrays(table, rows, columns))
    return [tuple(row) for row in result] if returning else []


def update_rows(
    conn: Connection,
    table: Table,
    key: str,
    rows: Sequence[Mapping[str, Any]],
    *,
    add: Sequence[str] = (),
) -> None:
    """Update each row's columns by `key` (set them, or add to them for names in `add`)."""
    if not rows:
        return
    columns = [name for name in rows[0] if name != key]
    if not is_postgresql(conn):
        values = {
            name: (table.c[name] + bindparam(f"v_{name}"))
            if name in add
            else bindparam(f"v_{name}")
            for name in columns
        }
        statement = update(table).where(table.c[key] == bindparam("k_key")).values(values)
        conn.execute(
            statement,
            [{"k_key": row[key]} | {f"v_{name}": row[name] for name in columns} for row in rows],
        )
        return
    names = [key, *columns]
    casts = ", ".join(f"CAST(:a_{name} AS {_pg_type(table, name)}[])" for name in names)
    sets = ", ".join(
        f"{name} = {table.name}.{name} + v.{name}" if name in add else f"{name} = v.{name}"
        for name in columns
    )
    sql = (  # names from the table definitions, never from input
        f"UPDATE {table.name} SET {sets} FROM unnest({casts}) AS v({', '.join(names)}) "  # noqa: S608
        f"WHERE {table.name}.{key} = v.{key}"
    )
    conn.execute(text(sql), _arrays(table, rows, names))
