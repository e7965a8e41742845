"""The hand-written settlement migration creates exactly the tables `settlement.tables`
describes, on both databases."""

from __future__ import annotations

from node_api.kernel.db import Database
from node_api.schema.tables import metadata
from settlement.tables import SETTLEMENT_TABLES
from tests.db_fixtures import fetch_schema_diffs

OWN_TABLES = {table.name for table in SETTLEMENT_TABLES}


def test_migration_matches_the_settlement_tables(plain_database: Database) -> None:
    assert set(metadata.tables) >= OWN_TABLES
    assert fetch_schema_diffs(plain_database, OWN_TABLES) == []
