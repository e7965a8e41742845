"""The migrations build exactly the schema the table modules declare, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from node_api.kernel.db import Database
from node_api.schema.tables import metadata


def test_migrated_schema_matches_the_table_definitions(database: Database) -> None:
    with database.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        differences = compare_metadata(context, metadata)
    assert differences == []


def test_account_pages_keep_room_for_balance_updates_on_postgresql(database: Database) -> None:
    if database.engine.dialect.name != "postgresql":
        return  # a PostgreSQL storage parameter; SQLite has none
    with database.engine.connect() as conn:
        options = conn.exec_driver_sql(
            "SELECT reloptions FROM pg_class WHERE relname = 'ledger_account'"
        ).scalar_one()
    assert options is not None and "fillfactor=80" in options
