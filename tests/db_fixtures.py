"""Database fixtures: every database test runs on SQLite and on PostgreSQL.

PostgreSQL: a fresh database per test run (per xdist worker), dropped afterwards. Under
CI=true a missing server fails the run; elsewhere PostgreSQL tests are skipped with a
clear reason. Between tests every table is emptied (the schema is migrated once).
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Engine

from node_api.kernel.db import Database
from node_api.schema.customer_keys import customer_id_mismatches
from node_api.schema.migrate import migrate
from node_api.schema.partitioning import partition_tables

PG_ADMIN_URL = os.environ.get(
    "CREDITNET_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").lower() == "true"


def _pg_reachable() -> str | None:
    try:
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any failure means "no server for this run"
        return str(exc).splitlines()[0]


def require_postgresql(why: str) -> None:
    """Go on only with a PostgreSQL server: under CI=true fail without one, elsewhere skip
    the test, saying `why` it needs one."""
    problem = _pg_reachable()
    if problem is not None:
        if IN_CI:
            pytest.fail(f"PostgreSQL is mandatory under CI=true and is unreachable: {problem}")
        pytest.skip(f"{why}: no server at {PG_ADMIN_URL} ({problem})")


@contextmanager
def empty_pg_database(prefix: str, why: str) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database (not migrated), dropped afterwards; `why`
    says what needs it when there is no server (see `require_postgresql`)."""
    require_postgresql(why)
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


TEST_PARTITIONS = 4
"""The PostgreSQL test database is laid out as production's: its per-customer tables
hash-partitioned by customer (`creditnet migrate --partitions N`, issue #19)."""


@pytest.fixture(scope="session")
def pg_database_url(worker_id: str) -> Iterator[str]:
    """A fresh PostgreSQL database for this run (and xdist worker), migrated once and
    partitioned by customer."""
    with empty_pg_database(f"creditnet_test_{worker_id}", "PostgreSQL tests skipped") as url:
        migrate(url)
        engine = create_engine(url)
        try:
            partition_tables(engine, TEST_PARTITIONS)
        finally:
            engine.dispose()
        yield url


@pytest.fixture(scope="session")
def pg_plain_database_url(worker_id: str) -> Iterator[str]:
    """A fresh PostgreSQL database migrated once and not partitioned: the schema the
    migrations write, which the table definitions are compared with."""
    with empty_pg_database(f"creditnet_plain_{worker_id}", "PostgreSQL tests skipped") as url:
        migrate(url)
        yield url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file copied for each test (faster than migrating each time)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    migrate(f"sqlite:///{path}")
    return path


_TABLES: dict[str, list[str]] = {}


def _tables_of(engine: Engine) -> list[str]:
    """The migrated tables of `engine`'s database (cached: the schema is migrated once)."""
    key = str(engine.url)
    if key not in _TABLES:
        with engine.connect() as conn:  # a partition is emptied with its table
            partitions = set(
                conn.execute(text("SELECT relname FROM pg_class WHERE relispartition")).scalars()
            )
        _TABLES[key] = sorted(
            t
            for t in inspect(engine).get_table_names()
            if t != "alembic_version" and t not in partitions
        )
    return _TABLES[key]


def _truncate_all(engine: Engine) -> None:
    """Empty every table and restart every sequence, as a fresh migration leaves them.

    A TRUNCATE costs a new file per table, partition and index (0.6-0.8 s a test on the
    partitioned database), paid by every PostgreSQL test and every Hypothesis example that
    resets, while a test writes a few hundred rows to a handful of tables. So: one query
    finds the tables holding rows, a DELETE empties each (foreign-key triggers off for the
    transaction, so in any order) and the sequences that were used start again at 1."""
    tables = _tables_of(engine)
    if not tables:
        return
    holding = " UNION ALL ".join(
        f"SELECT '{t}' WHERE EXISTS (SELECT 1 FROM \"{t}\")" for t in tables
    )
    with engine.begin() as conn:
        dirty = {str(row[0]) for row in conn.execute(text(holding))} & set(tables)
        used = conn.execute(
            text(
                "SELECT schemaname || '.' || sequencename FROM pg_sequences "
                "WHERE schemaname = current_schema() AND last_value IS NOT NULL"
            )
        ).scalars()
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        for table in sorted(dirty):
            conn.execute(text(f'DELETE FROM "{table}"'))
        for sequence in used:
            conn.execute(text("SELECT setval(:sequence, 1, false)"), {"sequence": sequence})


@pytest.fixture(params=["sqlite", "postgresql"])
def db_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


def _sqlite_copy(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    """A copy of the migrated SQLite template, for one test."""
    template: Path = request.getfixturevalue("sqlite_template")
    path = tmp_path / "test.db"
    shutil.copyfile(template, path)
    return Database(f"sqlite:///{path}")


@pytest.fixture
def database(db_backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated, empty database on the parametrized backend."""
    if db_backend == "sqlite":
        db = _sqlite_copy(request, tmp_path)
    else:
        url: str = request.getfixturevalue("pg_database_url")
        db = Database(url, pool_size=5)
        _truncate_all(db.engine)
    yield db
    try:
        # Issue #19's partitioning, step 1: whatever the test wrote, every per-customer row
        # names its customer (an insert path that forgets it fails here).
        with db.engine.connect() as conn:
            wrong = customer_id_mismatches(conn)
        assert not wrong, f"rows whose customer_id is not their parent's: {wrong}"
    finally:
        db.dispose()


@pytest.fixture
def plain_database(
    db_backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Database]:
    """A migrated database on the parametrized backend, PostgreSQL's not partitioned (what
    the migrations alone write)."""
    if db_backend == "sqlite":
        db = _sqlite_copy(request, tmp_path)
    else:
        db = Database(request.getfixturevalue("pg_plain_database_url"), pool_size=1)
    try:
        yield db
    finally:
        db.dispose()


def _table_of(diff: Any, tables: Collection[str]) -> str | None:
    """The table a diff entry is about, when it is one of `tables` (entries are tuples,
    or lists of tuples)."""
    entry = diff[0] if isinstance(diff, list) else diff
    for item in entry[1:]:
        table = getattr(item, "table", None)
        if table is not None:
            return str(table.name)
        name = getattr(item, "name", None)
        if isinstance(item, str) and item in tables:
            return item
        if name in tables:
            return str(name)
    return None


def fetch_schema_diffs(database: Database, tables: Collection[str]) -> list[Any]:
    """What Alembic finds between the migrated `database` and the tables the code
    describes (`node_api.schema.tables`), on `tables` only: [] when the migrations create
    exactly those tables, columns, types, indexes and constraints."""
    from node_api.schema.tables import metadata  # every table module: only when compared

    with database.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return [d for d in compare_metadata(context, metadata) if _table_of(d, tables) in tables]
