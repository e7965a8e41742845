"""`creditnet bench relay` on a PostgreSQL server, short: each run relays into and indexes
from databases of its own, which it drops, so a second run on the same URL measures the
same work (an indexer that found the first run's checkpoint rolled all of it back
first, and the URL's own database kept the schema and rows the runs wrote)."""

from __future__ import annotations

from sqlalchemy import create_engine, text

from scripts.bench.relay import run_relay_bench
from tests.db_fixtures import PG_ADMIN_URL, require_postgresql


def _bench_databases() -> set[str]:
    engine = create_engine(PG_ADMIN_URL)
    try:
        with engine.connect() as conn:
            return set(
                conn.execute(
                    text(
                        "SELECT datname FROM pg_database WHERE datname LIKE 'creditnet_relay_%'"
                        " OR datname LIKE 'creditnet_indexer_%'"
                    )
                ).scalars()
            )
    finally:
        engine.dispose()


def _tables_of_admin_database() -> int:
    engine = create_engine(PG_ADMIN_URL)
    try:
        with engine.connect() as conn:
            query = "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
            return int(conn.execute(text(query)).scalar_one())
    finally:
        engine.dispose()


def test_two_runs_on_one_url_each_index_their_own_chain_and_leave_nothing() -> None:
    require_postgresql("the benchmark runs on the server")
    before, tables_before = _bench_databases(), _tables_of_admin_database()
    runs = [
        run_relay_bench(agreements=40, batch_sizes="20", index_events=60, database_url=PG_ADMIN_URL)
        for _ in range(2)
    ]
    for figures in runs:
        (relay,) = figures["relay"]
        assert relay["agreements"] == 40 and relay["anchored_rate_per_s"] > 0
        # The catch-up stores the run's own openings' events, and meets no reorg (the
        # benchmark raises if it does).
        assert figures["indexer_catch_up"]["events"] >= 60
    assert runs[0]["indexer_catch_up"]["events"] == runs[1]["indexer_catch_up"]["events"]
    assert _bench_databases() == before
    assert _tables_of_admin_database() == tables_before
