"""The hand-written migration creates exactly the tables the code describes."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from node_api.kernel.db import Database
from node_api.schema.tables import metadata

OWN_TABLES = {
    "business_date",
    "ledger_account",
    "posting_batch",
    "posting",
    "settlement_event",
    "idempotency_record",
    "idempotency_response",
    "product_version",
    "credit_line",
    "limit_node",
    "purchase",
    "purchase_refund",
    "principal_reduction",
    "repayment",
    "repayment_allocation",
}


def _table_of(diff: Any) -> str | None:
    """The table a diff entry is about (entries are tuples, or lists of tuples)."""
    entry = diff[0] if isinstance(diff, list) else diff
    for item in entry[1:]:
        name = getattr(item, "name", None)
        table = getattr(item, "table", None)
        if table is not None:
            return str(table.name)
        if isinstance(item, str) and item in OWN_TABLES:
            return item
        if name in OWN_TABLES:
            return str(name)
    return None


def test_migration_matches_the_table_definitions(database: Database) -> None:
    with database.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = [d for d in compare_metadata(context, metadata) if _table_of(d) in OWN_TABLES]
    assert diffs == []
