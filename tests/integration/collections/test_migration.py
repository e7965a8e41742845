"""The hand-written collections migrations (0010 and 0012) create exactly the tables
`node_api.collections.tables` describes, on both databases."""

from __future__ import annotations

from node_api.kernel.db import Database
from node_api.schema.tables import metadata
from tests.db_fixtures import fetch_schema_diffs

OWN_TABLES = {name for name in metadata.tables if name.startswith("collections_")}


def test_migrations_match_the_collections_tables(plain_database: Database) -> None:
    assert {
        "collections_compensation_terms",
        "collections_compensation",
        "collections_recovery",
        "collections_debt_sale",
        "collections_debt_sale_line",
    } <= OWN_TABLES
    assert fetch_schema_diffs(plain_database, OWN_TABLES) == []
