"""The set-based helpers write and match exactly what plain statements would, on both
databases, whatever the values hold (quotes, backslashes, commas, NULL, dates)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from node_api.db import Database
from node_api.lending.bulk_sql import insert_rows, match_ids, match_values, update_rows
from node_api.lending.eod.tables import eod_batch_table, eod_run_table

AWKWARD = ['a"b', "back\\slash", "com,ma", "{brace}", "NULL", "", "space d", "汉字"]


def test_insert_match_and_update_round_trip_awkward_values(database: Database) -> None:
    rows = [
        {"as_of": date(2025, 1, 1 + index), "status": value} for index, value in enumerate(AWKWARD)
    ]
    with database.engine.begin() as conn:
        returned = insert_rows(conn, eod_run_table, rows, ("status", "as_of"))
        assert sorted(returned) == sorted((row["status"], row["as_of"]) for row in rows)
        found = conn.execute(
            select(eod_run_table.c.status).where(
                match_values(conn, eod_run_table.c.status, AWKWARD[:4])
            )
        ).scalars()
        assert sorted(found) == sorted(AWKWARD[:4])
    batch = {"as_of": date(2025, 2, 1), "step": "bill", "lines": 1, "postings": 2, "amount_fen": 3}
    with database.engine.begin() as conn:
        insert_rows(conn, eod_batch_table, [
            batch | {"batch_no": n, "last_line_id": 10 * n} for n in (1, 2, 3)
        ])  # fmt: skip
        update_rows(
            conn, eod_batch_table, "last_line_id",
            [{"last_line_id": 10, "amount_fen": 5}, {"last_line_id": 30, "amount_fen": -3}],
            add=("amount_fen",),
        )  # fmt: skip
        table = eod_batch_table
        rows_found = conn.execute(
            select(table.c.batch_no, table.c.amount_fen).where(
                match_ids(conn, table.c.last_line_id, [10, 20, 30, 40])
            )
        )
        amounts = {int(batch_no): int(amount) for batch_no, amount in rows_found}
    assert amounts == {1: 8, 2: 3, 3: 0}
