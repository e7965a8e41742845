"""The hand-written collections migrations (0010 and 0012) create exactly the tables
`node_api.collections.tables` describes, on both databases."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from node_api.kernel.db import Database
from node_api.schema.tables import metadata

OWN_TABLES = {name for name in metadata.tables if name.startswith("collections_")}


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


def test_migrations_match_the_collections_tables(database: Database) -> None:
    assert {
        "collections_compensation_terms",
        "collections_compensation",
        "collections_recovery",
        "collections_debt_sale",
        "collections_debt_sale_line",
    } <= OWN_TABLES
    with database.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = [d for d in compare_metadata(context, metadata) if _table_of(d) in OWN_TABLES]
    assert diffs == []
