"""Issue #19, step 2: the per-customer tables converted to PostgreSQL's hash-partitioned
layout by customer id (`node_api.schema.partitioning`), offline, on a migrated database:
empty, and holding rows the application wrote."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, insert, inspect, select, text, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from typer.testing import CliRunner

from node_api.cli import app as cli_app
from node_api.kernel.db import Database
from node_api.kernel.money import Fen
from node_api.ledger.accounts import (
    AccountIdCache,
    AccountType,
    ensure_accounts,
    node_account_code,
    node_account_specs,
)
from node_api.ledger.business_date import set_business_date
from node_api.ledger.postings import BatchDraft, PostingLine, post_batch
from node_api.ledger.schema import limit_node_table
from node_api.lending.core.context import LendingCaches
from node_api.lending.purchase_tables import purchase_table
from node_api.lending.repayments import repay
from node_api.schema.customer_keys import (
    NODE_LOCAL,
    PER_CUSTOMER,
    REFERENCE,
    customer_column,
    customer_id_mismatches,
)
from node_api.schema.migrate import migrate
from node_api.schema.partitioning import PARTITIONED, partition_count, partition_tables
from node_api.schema.tables import metadata
from tests.db_fixtures import empty_pg_database
from tests.integration.lending.helpers import OPENED_ON, check_books, open_line
from tests.integration.lending.test_purchases_db import purchase

WHY = "partitioning by customer id is PostgreSQL's"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A new PostgreSQL database, migrated to the newest revision, dropped afterwards."""
    with empty_pg_database("creditnet_partitioning", WHY) as url:
        migrate(url)
        yield url


def _columns(conn: Connection, table: str) -> list[tuple[Any, ...]]:
    """`information_schema.columns` of `table`, in column order."""
    return [
        tuple(row)
        for row in conn.execute(
            text(
                "SELECT column_name, data_type, character_maximum_length, numeric_precision, "
                "numeric_scale, datetime_precision, collation_name, column_default, "
                "is_nullable, is_identity, is_generated "
                "FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = :t "
                "ORDER BY ordinal_position"
            ),
            {"t": table},
        )
    ]


def _shape(conn: Connection, table: str) -> dict[str, Any]:
    """Everything about `table` a conversion could change: kind, columns, constraints
    (by name, with their definitions), indexes and options."""
    kind, options = conn.execute(
        text("SELECT relkind, reloptions FROM pg_class WHERE oid = to_regclass(:t)"), {"t": table}
    ).one()
    constraints: dict[str, str] = dict(
        conn.execute(
            text(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = to_regclass(:t) AND conparentid = 0"  # not per partition
            ),
            {"t": table},
        ).all()
    )
    indexes: dict[str, str] = dict(
        conn.execute(
            text(
                "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = to_regclass(:t)"
            ),
            {"t": table},
        ).all()
    )
    return {
        "kind": kind,
        "options": options,
        "columns": _columns(conn, table),
        "constraints": constraints,
        "indexes": indexes,
    }


def _shapes(engine: Engine, tables: frozenset[str]) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        return {table: _shape(conn, table) for table in sorted(tables)}


def _partitions(conn: Connection, table: str) -> list[str]:
    return [
        str(row[0])
        for row in conn.execute(
            text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = to_regclass(:t) ORDER BY c.relname"
            ),
            {"t": table},
        )
    ]


def _expected_columns(before: list[tuple[Any, ...]], customer: str) -> list[tuple[Any, ...]]:
    """The columns of a table after the conversion: its customer column NOT NULL."""
    return [(*c[:8], "NO", *c[9:]) if c[0] == customer else c for c in before]


def test_an_empty_database_is_partitioned_with_keys_led_by_the_customer(pg_url: str) -> None:
    engine = create_engine(pg_url)
    try:
        others = frozenset(inspect(engine).get_table_names()) - PARTITIONED
        assert "customer" in others and others >= REFERENCE | NODE_LOCAL
        before = _shapes(engine, PARTITIONED)
        untouched = _shapes(engine, others)

        answer = partition_tables(engine, 4)

        assert answer["partitions"] == 4 and answer["tables"] == len(PARTITIONED) == 32
        assert answer["rows_copied"] == dict.fromkeys(PARTITIONED, 0)
        after = _shapes(engine, PARTITIONED)
        assert _shapes(engine, others) == untouched  # the vault, reference and node tables
        with engine.connect() as conn:
            assert partition_count(conn) == 4
            functions = conn.execute(
                text(
                    "SELECT proname, l.lanname, p.prosqlbody IS NULL FROM pg_proc p "
                    "JOIN pg_language l ON l.oid = p.prolang "
                    "WHERE p.pronamespace = current_schema()::regnamespace ORDER BY 1"
                )
            ).all()
            # Bodies resolved by name when called (none bound to the old tables' oids).
            assert functions
            assert all(lang == "plpgsql" or by_name for _, lang, by_name in functions)
            for table in sorted(PARTITIONED):
                customer = customer_column(table)
                assert after[table]["kind"] == "p", table
                assert _partitions(conn, table) == sorted(f"{table}_p{i}" for i in range(4))
                key = conn.execute(
                    text("SELECT pg_get_partkeydef(to_regclass(:t))"), {"t": table}
                ).scalar_one()
                assert key == f"HASH ({customer})"
                # Same columns, types and defaults; the customer column now required.
                assert after[table]["columns"] == _expected_columns(
                    before[table]["columns"], customer
                )
                # Same constraint and index names.
                assert set(after[table]["constraints"]) == set(before[table]["constraints"])
                # plus a plain index on each key's old columns (lookups without the
                # customer probe an index per partition)
                lookups = {n for n in after[table]["indexes"] if n.endswith("_lookup")}
                assert set(after[table]["indexes"]) - lookups == set(before[table]["indexes"])
                for name in lookups:
                    assert "UNIQUE" not in after[table]["indexes"][name], (table, name)
                for name, definition in after[table]["constraints"].items():
                    old = before[table]["constraints"][name]
                    if definition.startswith(("PRIMARY KEY", "UNIQUE")):
                        assert definition.split("(")[1].startswith(customer), (table, definition)
                    elif definition.startswith("FOREIGN KEY"):
                        parent = definition.split("REFERENCES ")[1].split("(")[0]
                        if parent in PARTITIONED:
                            # Composite: a row names a parent of its own customer only.
                            assert definition.startswith(f"FOREIGN KEY ({customer}, ")
                            assert f"REFERENCES {parent}({customer_column(parent)}, " in (
                                definition
                            )
                        else:
                            assert definition == old, (table, name)
                    else:  # CHECK constraints as they were
                        assert definition == old, (table, name)
                for name, definition in after[table]["indexes"].items():
                    if name in lookups:
                        continue
                    old = before[table]["indexes"][name]
                    if "UNIQUE" in definition:
                        assert f"btree ({customer}" in definition, (table, definition)
                    else:  # pg_get_indexdef says ONLY of a partitioned table's index
                        assert definition.replace(" ON ONLY ", " ON ") == old, (table, name)
            # Composite foreign keys between per-customer tables, e.g. a promise's case.
            promise = after["collections_promise"]["constraints"]["fk_collections_promise_case"]
            assert promise == (
                "FOREIGN KEY (customer_id, case_id) REFERENCES collections_case(customer_ref, id)"
            )
            assert after["limit_node"]["constraints"]["fk_limit_node_parent"] == (
                "FOREIGN KEY (customer_id, parent_id) REFERENCES limit_node(customer_id, id)"
            )
            # The account storage option moved to the partitions.
            assert before["ledger_account"]["options"] == ["fillfactor=80"]
            assert _shape(conn, "ledger_account_p0")["options"] == ["fillfactor=80"]
            # The serial sequences survive, owned by the new tables.
            owner = conn.execute(
                text(
                    "SELECT d.refobjid::regclass::text FROM pg_depend d "
                    "WHERE d.objid = 'posting_id_seq'::regclass AND d.deptype = 'a'"
                )
            ).scalar_one()
            assert owner == "posting"
            leftovers = conn.execute(
                text("SELECT relname FROM pg_class WHERE relname LIKE 'creditnet_unpart%'")
            ).all()
            assert leftovers == []

        assert partition_tables(engine, 4) == {"partitions": 4, "tables": 0, "rows_copied": {}}
        with pytest.raises(ValueError, match="another number of partitions"):
            partition_tables(engine, 8)
        with pytest.raises(ValueError, match="at least 1"):
            partition_tables(engine, 0)
        assert _shapes(engine, PARTITIONED) == after
    finally:
        engine.dispose()


def _rows(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every per-customer table's rows, ordered by its (plain table's) primary key."""
    found: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as conn:
        for name in sorted(PARTITIONED):
            table = metadata.tables[name]
            key = list(table.primary_key.columns)
            found[name] = [dict(r._mapping) for r in conn.execute(select(table).order_by(*key))]
    return found


def _node_batch(database: Database, key: str, amount_fen: int) -> int:
    """A batch of the node's own (no credit line, no customer)."""
    lines = (
        PostingLine(node_account_code(AccountType.PROVISION_EXPENSE), amount_fen),
        PostingLine(node_account_code(AccountType.LOAN_LOSS_ALLOWANCE), -amount_fen),
    )
    with database.engine.begin() as conn:
        ensure_accounts(conn, node_account_specs())
        return post_batch(conn, BatchDraft(key, "adjustment", OPENED_ON, lines), AccountIdCache())


# The hot path's lookups that do not name the customer (issue #19 step 3 would add it).
LOOKUPS = {
    "credit_line": "id = 1",
    "limit_node": "id = 1",
    "ledger_account": "code = 'node:cash'",
    "posting_batch": "business_key = 'purchase:1'",
    "purchase": "id = 1",
    "installment_plan": "purchase_id = 1",
    "bill": "credit_line_id = 1 AND bill_date = DATE '2026-01-05'",
}


def test_lookups_without_the_customer_probe_an_index_in_every_partition(pg_url: str) -> None:
    """An index led by the customer serves a lookup by id only by reading all of it (what
    made authorizations 12-20x slower on 16 partitions): each partition's index used must
    begin with the looked-up column."""
    engine = create_engine(pg_url)
    try:
        partition_tables(engine, 4)
        with engine.begin() as conn:
            conn.execute(text("SET LOCAL enable_seqscan = off"))  # tiny tables: ask the cost
            for table, where in LOOKUPS.items():
                plan = "\n".join(
                    str(row[0])
                    for row in conn.execute(text(f"EXPLAIN SELECT * FROM {table} WHERE {where}"))
                )
                used = re.findall(r"using (\S+) on " + table + r"_p", plan)
                assert len(used) == 4, (table, plan)
                for index in used:
                    first = conn.execute(
                        text(
                            "SELECT a.attname FROM pg_index i JOIN pg_attribute a "
                            "ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
                            "WHERE i.indexrelid = to_regclass(:index)"
                        ),
                        {"index": index},
                    ).scalar_one()
                    assert first == where.split()[0], (table, index, plan)
    finally:
        engine.dispose()


def _max_ids(engine: Engine, tables: tuple[str, ...]) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t: int(conn.execute(select(func.max(metadata.tables[t].c.id))).scalar_one())
            for t in tables
        }


WRITTEN = ("credit_line", "limit_node", "ledger_account", "posting_batch", "posting", "purchase")


def test_rows_written_by_the_application_survive_and_writing_goes_on(pg_url: str) -> None:
    database = Database(pg_url)
    caches = LendingCaches()
    with database.engine.begin() as conn:
        set_business_date(conn, OPENED_ON)
        line_id = open_line(conn, caches, cash_fen=10_000, channel_limits={"app": 30_000})
    assert purchase(database, caches, line_id, 6_000).status_code == 201
    assert purchase(database, caches, line_id, 1_500).status_code == 201
    with database.engine.begin() as conn:
        repay(conn, caches, line_id=line_id, amount_fen=Fen(2_000), currency="CNY", as_of=None)
    node_batch = _node_batch(database, "node:provision:1", 300)
    with database.engine.begin() as conn:
        # Rows as a node of the previous release writes them: the node's own without a
        # customer (NULL), which the conversion gives the node's sentinel, ''.
        conn.execute(
            text("UPDATE posting_batch SET customer_id = NULL WHERE id = :b"), {"b": node_batch}
        )
        conn.execute(
            text("UPDATE posting SET customer_id = NULL WHERE batch_id = :b"), {"b": node_batch}
        )
        conn.execute(text("UPDATE ledger_account SET customer_id = NULL WHERE code LIKE 'node:%'"))
    before = _rows(database.engine)
    assert all(before[t] for t in (*WRITTEN, "repayment", "settlement_event"))
    ids_before = _max_ids(database.engine, WRITTEN)
    database.dispose()  # offline: every node stopped

    engine = create_engine(pg_url)
    try:
        answer = partition_tables(engine, 4)
        after = _rows(engine)
    finally:
        engine.dispose()
    assert answer["rows_copied"] == {t: len(rows) for t, rows in before.items()}
    for table in sorted(PARTITIONED):
        customer = customer_column(table)
        expected = [{**r, customer: r[customer] or ""} for r in before[table]]
        assert after[table] == expected, table
    node_rows = [r for r in after["posting_batch"] if r["id"] == node_batch]
    assert [r["customer_id"] for r in node_rows] == [""]

    # The application goes on writing, through the same code paths and PostgreSQL's
    # authorization batch functions, ids continuing after the old ones.
    database = Database(pg_url)
    caches = LendingCaches()
    try:
        assert purchase(database, caches, line_id, 2_000).status_code == 201
        with database.engine.begin() as conn:
            repay(conn, caches, line_id=line_id, amount_fen=Fen(500), currency="CNY", as_of=None)
            other_line = open_line(conn, caches, customer_ref="cust-2")
        assert purchase(database, caches, other_line, 700).status_code == 201
        _node_batch(database, "node:provision:2", 200)
        ids_after = _max_ids(database.engine, WRITTEN)
        assert all(ids_after[t] > ids_before[t] for t in WRITTEN), (ids_before, ids_after)
        with database.engine.connect() as conn:
            assert partition_count(conn) == 4
            assert customer_id_mismatches(conn) == {}
            check_books(conn, [line_id, other_line])
            nulls = conn.execute(
                text("SELECT count(*) FROM posting WHERE customer_id IS NULL")
            ).scalar_one()
            assert nulls == 0

        # A row naming a parent of another customer is refused by the composite keys.
        with (
            pytest.raises(IntegrityError, match="fk_limit_node_line"),
            database.engine.begin() as conn,
        ):
            conn.execute(
                insert(limit_node_table).values(
                    credit_line_id=line_id,
                    path="total/elsewhere",
                    level="product",
                    limit_fen=1,
                    customer_id="cust-2",
                )
            )
        with (
            pytest.raises(IntegrityError, match="fk_purchase_line"),
            database.engine.begin() as conn,
        ):
            conn.execute(
                update(purchase_table)
                .where(purchase_table.c.credit_line_id == line_id)
                .values(customer_id="cust-2")
            )
    finally:
        database.dispose()


def test_sqlite_keeps_its_plain_tables(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'plain.db'}")
    try:
        with pytest.raises(ValueError, match="PostgreSQL"):
            partition_tables(engine, 4)
        with engine.connect() as conn:
            assert partition_count(conn) == 0
    finally:
        engine.dispose()
    assert PER_CUSTOMER - {"customer"} == PARTITIONED


def _cli(env: dict[str, str | None]) -> CliRunner:
    clean: dict[str, str | None] = {
        name: None for name in os.environ if name.startswith("CREDITNET_")
    }
    return CliRunner(env={**clean, **env})


def test_the_cli_migrates_then_partitions_once_and_refuses_sqlite(tmp_path: Path) -> None:
    sqlite = _cli({}).invoke(
        cli_app, ["migrate", "--partitions", "4", "--data-dir", str(tmp_path / "lite")]
    )
    assert sqlite.exit_code == 2 and "PostgreSQL" in sqlite.output
    with empty_pg_database("creditnet_partition_cli", WHY) as url:
        runner = _cli({"CREDITNET_DATABASE_URL": url})
        command = ["migrate", "--partitions", "4", "--data-dir", str(tmp_path / "node")]
        first = runner.invoke(cli_app, command)
        assert first.exit_code == 0, first.output
        report = json.loads(first.stdout.splitlines()[-1])
        assert report["partitions"] == 4 and report["tables"] == len(PARTITIONED)
        again = runner.invoke(cli_app, command)
        assert again.exit_code == 0 and json.loads(again.stdout.splitlines()[-1])["tables"] == 0
        other = runner.invoke(cli_app, [*command[:2], "8", *command[3:]])
        assert other.exit_code == 2 and "4" in other.output
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                assert partition_count(conn) == 4
        finally:
            engine.dispose()
