"""`creditnet bench eod`: its seed is the same in chunks as in one piece (so a million
lines seed in bounded memory), and a small run closes the bench date with the books of
one worker and of two identical and balanced, the day's purchases funded by end of day
(PostgreSQL: the bench seeds with COPY).
Every per-customer row the seed writes names its line's customer."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from node_api.kernel.db import Database
from node_api.schema.customer_keys import customer_id_mismatches
from scripts.bench.eod import run_eod_bench
from scripts.bench.eod_seed import SEQUENCED_TABLES, seed_bench
from scripts.bench.scratch_db import scratch_database
from tests.db_fixtures import PG_ADMIN_URL, require_postgresql

LINES = 1_200
SEEDED_TABLES = (*SEQUENCED_TABLES, "bill_outcome", "line_delinquency")


@pytest.fixture(autouse=True)
def _postgresql() -> None:
    require_postgresql("the end-of-day bench seeds PostgreSQL with COPY")


def _seeded_rows(chunk_lines: int) -> dict[str, list[tuple[Any, ...]]]:
    """Every seeded table's rows (in key order) after seeding LINES in chunks."""
    with scratch_database(PG_ADMIN_URL, "creditnet_eod_seed") as url:
        database = Database(url, pool_size=1)
        try:
            with database.engine.begin() as conn:
                seed_bench(conn, LINES, chunk_lines=chunk_lines)
            with database.engine.connect() as conn:
                assert customer_id_mismatches(conn) == {}
                # The table names are the bench's constants, never input.
                sums = conn.execute(
                    text(
                        "SELECT (SELECT sum(amount_fen) FROM posting),"
                        " (SELECT sum(balance_fen) FROM ledger_account)"
                    )
                ).all()
                return {"sums": [tuple(row) for row in sums]} | {
                    table: [
                        tuple(row)
                        for row in conn.execute(text(f"SELECT * FROM {table} ORDER BY 1, 2"))
                    ]
                    for table in SEEDED_TABLES
                }
        finally:
            database.dispose()


def test_the_seed_is_the_same_in_chunks_as_in_one_piece() -> None:
    whole = _seeded_rows(chunk_lines=LINES)
    chunked = _seeded_rows(chunk_lines=500)  # chunks of 500, 500 and 200 lines
    assert len(whole["credit_line"]) == LINES
    assert whole["sums"] == [(0, 0)], "the seed's postings and balances do not balance"
    for table in SEEDED_TABLES:
        assert chunked[table] == whole[table], table


def test_a_small_bench_run_closes_the_date_with_identical_balanced_books() -> None:
    """A tenth of the lines purchase on the day: end of day's funding step posts their
    funders' shares, one batch a line, the same with one worker and with two."""
    figures: Any = run_eod_bench(lines=300, workers=2, batch_lines=100, used_pct=10)
    assert figures["books_identical_to_workers_1"] is True
    assert figures["books_balanced"] is True
    assert figures["lines"] == 300
    assert figures["lines_used_on_the_day"] == 30
    fund = figures["steps"]["fund"]
    assert (fund["lines"], fund["postings"]) == (30, 30)


def test_the_sharded_run_alone_reports_the_shard_processes_peak_memory() -> None:
    figures: Any = run_eod_bench(lines=300, workers=2, batch_lines=100, compare=0)
    assert figures["books_balanced"] is True
    assert 0 < figures["peak_rss_mib_shard_process"] < 2_048
    assert 0 < figures["peak_rss_mib"] < 4_096
