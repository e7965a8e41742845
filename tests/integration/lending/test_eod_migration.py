"""Migrations 0005, 0008, 0011 and 0015 create exactly the end-of-day and servicing tables
the code describes."""

from __future__ import annotations

from sqlmodel import SQLModel

import node_api.lending.bill_tables
import node_api.lending.customer_credit
import node_api.lending.eod.tables
import node_api.lending.installment_tables  # noqa: F401
from node_api.kernel.db import Database
from node_api.schema.tables import metadata as node_metadata
from tests.db_fixtures import fetch_schema_diffs

OWN_TABLES = {
    "bill",
    "bill_line",
    "bill_outcome",
    "bill_charge",
    "installment_plan",
    "installment",
    "line_delinquency",
    "line_accrual",
    "eod_run",
    "eod_step",
    "eod_batch",
    "eod_shard",
    "credit_refund",
}


def test_eod_migration_matches_the_table_definitions(plain_database: Database) -> None:
    assert node_metadata is SQLModel.metadata
    assert fetch_schema_diffs(plain_database, OWN_TABLES) == []
