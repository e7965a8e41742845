"""The set-based bulk statements pass each column as an array's text form on PostgreSQL
(`ledger.sql._array_text`): every value must read back exactly as given, on both
databases, whatever characters a string holds."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from node_api.kernel.db import Database
from node_api.ledger.schema import posting_batch_table
from node_api.ledger.sql import Row, bulk_insert, bulk_insert_returning_ids, bulk_update

AWKWARD_KEYS = (
    'quote"inside',
    "back\\slash",
    "NULL",
    "comma,and{braces}",
    " leading and trailing ",
    "ünïcödé:键",
    '\\"both\\"',
)


def test_bulk_insert_reads_back_every_string_and_null_unchanged(database: Database) -> None:
    table = posting_batch_table
    rows: list[Row] = [
        {
            "business_key": key,
            "kind": "test_kind",
            "as_of": date(2025, 3, index + 1),
            "credit_line_id": None if index % 2 else index,
            "reverses_batch_id": None,
            "customer_id": "" if index % 2 else f"cust-{index}",  # the node's, or a line's
        }
        for index, key in enumerate(AWKWARD_KEYS)
    ]
    with database.engine.begin() as conn:
        ids = bulk_insert_returning_ids(conn, table, rows)
        stored = conn.execute(
            select(table.c.id, table.c.business_key, table.c.as_of, table.c.credit_line_id)
            .where(table.c.id.in_(ids))
            .order_by(table.c.id)
        ).all()
    assert [(key, as_of, line_id) for _, key, as_of, line_id in stored] == [
        (row["business_key"], row["as_of"], row["credit_line_id"]) for row in rows
    ]


def test_bulk_update_sets_and_increments_by_key(database: Database) -> None:
    table = posting_batch_table
    rows: list[Row] = [
        {
            "business_key": key,
            "kind": "test_kind",
            "as_of": date(2025, 3, 1),
            "credit_line_id": 7,
            "customer_id": "cust-7",
        }
        for key in AWKWARD_KEYS[:3]
    ]
    with database.engine.begin() as conn:
        bulk_insert(conn, table, rows)
        bulk_update(
            conn,
            table,
            [{"business_key": key, "credit_line_id": 5} for key in AWKWARD_KEYS[:3]],
            keys=("business_key",),
            increment=("credit_line_id",),
        )
        found = dict(conn.execute(select(table.c.business_key, table.c.credit_line_id)).all())
    assert found == dict.fromkeys(AWKWARD_KEYS[:3], 12)
