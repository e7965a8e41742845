"""The migrations build exactly the schema the table modules declare, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from node_api.kernel.db import Database
from node_api.schema.tables import metadata


def test_migrated_schema_matches_the_table_definitions(plain_database: Database) -> None:
    with plain_database.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        differences = compare_metadata(context, metadata)
    assert differences == []


def test_account_pages_keep_room_for_balance_updates_on_postgresql(database: Database) -> None:
    if database.engine.dialect.name != "postgresql":
        return  # a PostgreSQL storage parameter; SQLite has none
    with database.engine.connect() as conn:
        # the table's pages, or each partition's (the test database is partitioned)
        options = (
            conn.exec_driver_sql(
                "SELECT c.reloptions FROM pg_class c WHERE c.relname = 'ledger_account' "
                "AND c.relkind = 'r' UNION ALL SELECT p.reloptions FROM pg_inherits i "
                "JOIN pg_class p ON p.oid = i.inhrelid "
                "WHERE i.inhparent = 'ledger_account'::regclass"
            )
            .scalars()
            .all()
        )
    assert options and all(o is not None and "fillfactor=80" in o for o in options)


def test_business_date_indexes_of_the_journal_are_brin_on_postgresql(
    plain_database: Database, database: Database
) -> None:
    """Migration 0022 (and the partitioned layout built from it): the batches' and the
    events' `as_of` indexes are BRIN, so an insert writes no B-tree entry into them."""
    for each in (plain_database, database):
        if each.engine.dialect.name != "postgresql":
            return  # SQLite keeps B-trees
        with each.engine.connect() as conn:
            methods = dict(
                conn.exec_driver_sql(
                    "SELECT c.relname, a.amname FROM pg_class c JOIN pg_am a ON a.oid = c.relam "
                    "WHERE c.relname IN ('ix_posting_batch_as_of', 'ix_settlement_event_as_of')"
                ).all()
            )
        assert methods == {"ix_posting_batch_as_of": "brin", "ix_settlement_event_as_of": "brin"}
