"""The onboarding migration creates exactly the tables the code describes."""

from __future__ import annotations

from node_api.kernel.db import Database
from node_api.schema.tables import metadata
from tests.db_fixtures import fetch_schema_diffs

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


def test_migration_matches_the_table_definitions(plain_database: Database) -> None:
    assert fetch_schema_diffs(plain_database, OWN_TABLES) == []
    assert set(metadata.tables) >= OWN_TABLES
