"""Migrations 0005, 0008 and 0011 create exactly the end-of-day and servicing tables the
code describes."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import node_api.lending.bill_tables
import node_api.lending.customer_credit
import node_api.lending.eod.tables
import node_api.lending.installment_tables  # noqa: F401
from node_api.kernel.db import Database
from node_api.schema.tables import metadata as node_metadata

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
    "credit_refund",
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


def test_eod_migration_matches_the_table_definitions(database: Database) -> None:
    assert node_metadata is SQLModel.metadata
    with database.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = [
            d for d in compare_metadata(context, SQLModel.metadata) if _table_of(d) in OWN_TABLES
        ]
    assert diffs == []
