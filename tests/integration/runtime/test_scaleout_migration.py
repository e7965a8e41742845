"""The hand-written scale-out migration creates exactly the tables `oracles.scaleout_tables`
and `node_api.events.tables` describe, on both databases."""

from __future__ import annotations

from node_api.events.tables import CURSOR_TABLE, LINE_BUCKET_TABLE
from node_api.kernel.db import Database
from node_api.schema.tables import metadata
from oracles.scaleout_tables import SCALEOUT_TABLES
from tests.db_fixtures import fetch_schema_diffs

OWN_TABLES = {table.name for table in (*SCALEOUT_TABLES, CURSOR_TABLE, LINE_BUCKET_TABLE)}


def test_migration_matches_the_scaleout_tables(plain_database: Database) -> None:
    assert set(metadata.tables) >= OWN_TABLES
    assert fetch_schema_diffs(plain_database, OWN_TABLES) == []
