"""The hand-written migration creates exactly the tables the code describes."""

from __future__ import annotations

from node_api.kernel.db import Database
from tests.db_fixtures import fetch_schema_diffs

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


def test_migration_matches_the_table_definitions(plain_database: Database) -> None:
    assert fetch_schema_diffs(plain_database, OWN_TABLES) == []
