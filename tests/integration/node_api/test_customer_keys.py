"""Issue #19's partitioning, step 1: every per-customer row names its customer.

Every table is classified (per customer, reference, node-local); migration 0019 back-fills
the rows written before it; rows an old node writes during a rolling upgrade (without the
id) are found and filled by `creditnet customer-ids --fill`. (That every insert path of
this release writes the id is checked after every database test, by the `database`
fixture.)"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from typer.testing import CliRunner

from node_api.cli import app as cli_app
from node_api.kernel.db import Database
from node_api.schema.customer_keys import (
    NODE_LOCAL,
    PARENTS,
    PER_CUSTOMER,
    REFERENCE,
    customer_column,
    customer_id_mismatches,
    fill_customer_ids,
)
from node_api.schema.migrate import alembic_config, migrate
from node_api.schema.tables import metadata
from tests.db_fixtures import empty_pg_database

BEFORE = "0018_eod_shard_claims"
DAY = date(2026, 3, 1)


def test_every_table_is_per_customer_reference_or_node_local_exactly_once() -> None:
    groups = [PER_CUSTOMER, REFERENCE, NODE_LOCAL]
    assert sum(len(group) for group in groups) == len(PER_CUSTOMER | REFERENCE | NODE_LOCAL)
    assert set(metadata.tables) == PER_CUSTOMER | REFERENCE | NODE_LOCAL


def test_each_per_customer_table_names_its_customer_in_a_column_of_the_roots_type() -> None:
    for name in PER_CUSTOMER:
        column = metadata.tables[name].c[customer_column(name)]
        assert isinstance(column.type, sa.String) and (column.type.length or 0) <= 64, name
    for name, (via, parent) in PARENTS.items():
        assert via in metadata.tables[name].c, name
        assert parent in PER_CUSTOMER, name
        # parents are listed before their children, so one pass fills a whole tree
        if parent in PARENTS:
            assert list(PARENTS).index(parent) < list(PARENTS).index(name), name


def _old_node_rows(conn: sa.Connection) -> None:
    """What a node of the release before 0019 writes: lines, one with a limit node and an
    account, a posting batch of that line and one of the node, their postings."""
    conn.execute(
        sa.text(
            "INSERT INTO credit_line (id, customer_ref, currency, status, opened_on, bill_day) "
            "VALUES (1, 'cust-a', 'CNY', 'active', :day, 5), "
            "(2, 'cust-b', 'CNY', 'active', :day, 5)"
        ),
        {"day": DAY},
    )
    conn.execute(
        sa.text(
            "INSERT INTO limit_node (id, credit_line_id, path, level, limit_fen) "
            "VALUES (1, 1, 'total', 'total', 100), (2, 2, 'total', 'total', 100)"
        )
    )
    conn.execute(
        sa.text(
            "INSERT INTO ledger_account (id, code, account_type, credit_line_id, currency, "
            "normal_sign, balance_fen) VALUES "
            "(1, 'line:2:principal', 'principal', 2, 'CNY', 1, 0), "
            "(2, 'node:cash', 'cash', NULL, 'CNY', 1, 0)"
        )
    )
    conn.execute(
        sa.text(
            "INSERT INTO posting_batch (id, business_key, kind, as_of, credit_line_id) "
            "VALUES (1, 'purchase:1', 'purchase', :day, 2), (2, 'fund:1', 'fund', :day, NULL)"
        ),
        {"day": DAY},
    )
    conn.execute(
        sa.text(
            "INSERT INTO posting (batch_id, account_id, amount_fen, as_of) VALUES "
            "(1, 1, 5, :day), (1, 2, -5, :day), (2, 2, 7, :day), (2, 1, -7, :day)"
        ),
        {"day": DAY},
    )


def _customers(conn: sa.Connection) -> dict[str, list[str | None]]:
    return {
        table: [
            row[0] for row in conn.execute(sa.text(f"SELECT customer_id FROM {table} ORDER BY id"))
        ]
        for table in ("limit_node", "ledger_account", "posting_batch", "posting")
    }


FILLED = {  # the node's own rows get NODE_CUSTOMER, the empty string (migration 0020)
    "limit_node": ["cust-a", "cust-b"],
    "ledger_account": ["cust-b", ""],
    "posting_batch": ["cust-b", ""],
    "posting": ["cust-b", "cust-b", "", ""],
}
FILLS = {"limit_node": 2, "ledger_account": 2, "posting_batch": 2, "posting": 4}
# each row is compared with its parent: postings whose batch names no customer yet are
# counted once their batch is filled (the batch is counted until then)
WRONG = {"limit_node": 2, "ledger_account": 2, "posting_batch": 2}


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of either kind, not yet migrated."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'node.db'}"
        return
    with empty_pg_database("creditnet_customer_keys", "the back-fill is checked there too") as url:
        yield url


def test_migrations_0019_and_0020_give_rows_written_before_them_their_customer(
    fresh_url: str,
) -> None:
    command.upgrade(alembic_config(fresh_url), BEFORE)
    engine = sa.create_engine(fresh_url)
    try:
        with engine.begin() as conn:
            _old_node_rows(conn)
        migrate(fresh_url)
        with engine.connect() as conn:
            assert _customers(conn) == FILLED
            assert customer_id_mismatches(conn) == {}
    finally:
        engine.dispose()


def test_rows_an_old_node_writes_during_the_roll_are_found_then_filled_in_batches(
    fresh_url: str,
) -> None:
    migrate(fresh_url)
    database = Database(fresh_url)
    try:
        with database.engine.begin() as conn:
            _old_node_rows(conn)  # the new columns left empty, as the old release does
        with database.engine.connect() as conn:
            assert customer_id_mismatches(conn) == WRONG
        filled = fill_customer_ids(database.engine, batch_rows=1)
        assert filled == FILLS
        with database.engine.connect() as conn:
            assert _customers(conn) == FILLED
            assert customer_id_mismatches(conn) == {}
        assert fill_customer_ids(database.engine) == {}  # nothing left
    finally:
        database.dispose()


def test_the_cli_reports_rows_without_their_customer_and_fills_them(tmp_path: Path) -> None:
    runner = CliRunner(env={name: None for name in os.environ if name.startswith("CREDITNET_")})
    node = str(tmp_path / "node")
    assert runner.invoke(cli_app, ["migrate", "--data-dir", node]).exit_code == 0
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'node' / 'creditnet.db'}")
    try:
        with engine.begin() as conn:
            _old_node_rows(conn)
    finally:
        engine.dispose()
    checked = runner.invoke(cli_app, ["customer-ids", "--data-dir", node])
    assert checked.exit_code == 1
    report = json.loads(checked.stdout)
    assert report["filled_rows"] == {} and report["mismatched_rows"] == WRONG
    filled = runner.invoke(cli_app, ["customer-ids", "--fill", "--data-dir", node])
    assert filled.exit_code == 0, filled.output
    assert json.loads(filled.stdout) == {
        "filled_rows": FILLS,
        "mismatched_rows": {},
    }
