"""The hand-written scale-out migration creates exactly the tables `oracles.scaleout_tables`
and `node_api.events.tables` describe, on both databases."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from node_api.events.tables import CURSOR_TABLE, LINE_BUCKET_TABLE
from node_api.kernel.db import Database
from node_api.schema.tables import metadata
from oracles.scaleout_tables import SCALEOUT_TABLES

OWN_TABLES = {table.name for table in (*SCALEOUT_TABLES, CURSOR_TABLE, LINE_BUCKET_TABLE)}


def _table_of(diff: Any) -> str | None:
    """The table a diff entry is about (entries are tuples, or lists of tuples)."""
    entry = diff[0] if isinstance(diff, list) else diff
    for item in entry[1:]:
        table = getattr(item, "table", None)
        if table is not None:
            return str(table.name)
        name = getattr(item, "name", None)
        if isinstance(item, str) and item in OWN_TABLES:
            return item
        if name in OWN_TABLES:
            return str(name)
    return None


def test_migration_matches_the_scaleout_tables(database: Database) -> None:
    assert set(metadata.tables) >= OWN_TABLES
    with database.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = [d for d in compare_metadata(context, metadata) if _table_of(d) in OWN_TABLES]
    assert diffs == []
