"""The onboarding migration creates exactly the tables the code describes."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from node_api.kernel.db import Database
from node_api.schema.tables import metadata

OWN_TABLES = {
    "customer",
    "loan_application",
    "application_attribute",
    "fraud_ring_link",
    "fraud_blacklist",
    "onboarding_policy",
    "risk_live_count",
    "liveness_challenge",
    "agreement_terms",
}


def _table_of(diff: Any) -> str | None:
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


def test_migration_matches_the_table_definitions(database: Database) -> None:
    with database.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = [d for d in compare_metadata(context, metadata) if _table_of(d) in OWN_TABLES]
    assert diffs == []
    assert set(metadata.tables) >= OWN_TABLES
