"""Rolling upgrades need expand-only migrations: while nodes of the previous release still
serve, a migration may add tables, nullable columns (or columns with a server default),
indexes and functions, but must not drop or rename a table or column, change a column's
type or make a column required that old nodes do not write. Contracting (dropping what no
release reads any more) happens in a later release, after the roll, and is listed in
`CONTRACT_ALLOWED` with its reason.

Every revision from the first one deployed with rolling upgrades (`0014_scaleout`) on is
checked on PostgreSQL, the production database: the schema before and after each step is
read back from the server and compared.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory

from node_api.schema.migrate import alembic_config
from tests.db_fixtures import empty_pg_database

FIRST_ROLLING = "0014_scaleout"
"""The first revision deployed to nodes that upgrade one after another."""

CONTRACT_ALLOWED: dict[str, str] = {}
"""Revision -> why its contracting change is safe (no release still reading it)."""


@dataclass(frozen=True)
class Column:
    type: str
    nullable: bool
    has_default: bool


Snapshot = dict[str, dict[str, Column]]


def contract_changes(before: Snapshot, after: Snapshot) -> list[str]:
    """What in `after` would break a node that only knows `before`."""
    problems = []
    for table, columns in before.items():
        if table not in after:
            problems.append(f"table {table} dropped")
            continue
        for name, column in columns.items():
            new = after[table].get(name)
            if new is None:
                problems.append(f"column {table}.{name} dropped")
            elif new.type != column.type:
                problems.append(f"column {table}.{name} type {column.type} -> {new.type}")
            elif column.nullable and not new.nullable and not new.has_default:
                problems.append(f"column {table}.{name} made required")
        for name, column in after[table].items():
            if name not in columns and not column.nullable and not column.has_default:
                problems.append(f"column {table}.{name} added required without a default")
    return problems


def _snapshot(engine: sa.Engine) -> Snapshot:
    inspector = sa.inspect(engine)
    return {
        table: {
            column["name"]: Column(
                str(column["type"]),
                bool(column["nullable"]),
                column.get("default") is not None or bool(column.get("autoincrement") is True),
            )
            for column in inspector.get_columns(table)
        }
        for table in inspector.get_table_names()
        if table != "alembic_version"
    }


def _rolling_revisions(url: str) -> list[tuple[str, str]]:
    """(down_revision, revision) of every step from FIRST_ROLLING to the head, in order."""
    script = ScriptDirectory.from_config(alembic_config(url))
    steps = []
    for revision in script.walk_revisions():  # head first
        down = revision.down_revision
        assert isinstance(down, str), f"{revision.revision}: merges are not expected"
        steps.append((down, revision.revision))
        if revision.revision == FIRST_ROLLING:
            return steps[::-1]
    raise AssertionError(f"{FIRST_ROLLING} is not an ancestor of the head")


@pytest.fixture
def empty_pg_url() -> Iterator[str]:
    with empty_pg_database("creditnet_expand", "PostgreSQL not reachable") as url:
        yield url


def test_every_migration_since_rolling_upgrades_is_expand_only(empty_pg_url: str) -> None:
    config = alembic_config(empty_pg_url)
    steps = _rolling_revisions(empty_pg_url)
    command.upgrade(config, steps[0][0])
    engine = sa.create_engine(empty_pg_url)
    try:
        before = _snapshot(engine)
        found = {}
        for _down, revision in steps:
            command.upgrade(config, revision)
            engine.dispose()  # the inspector must not see a cached catalog
            after = _snapshot(engine)
            problems = contract_changes(before, after)
            if problems and revision not in CONTRACT_ALLOWED:
                found[revision] = problems
            before = after
    finally:
        engine.dispose()
    assert found == {}, "contracting migrations break nodes of the previous release"


def test_the_check_sees_drops_type_changes_and_new_required_columns() -> None:
    text, required = Column("TEXT", True, False), Column("BIGINT", False, False)
    before: Snapshot = {"a": {"id": required, "note": text}, "b": {"id": required}}
    after: Snapshot = {
        "a": {
            "id": Column("INTEGER", False, False),
            "note": Column("TEXT", False, False),
            "added": Column("TEXT", False, False),
            "optional": text,
            "defaulted": Column("TEXT", False, True),
        }
    }
    assert contract_changes(before, after) == [
        "column a.id type BIGINT -> INTEGER",
        "column a.note made required",
        "column a.added added required without a default",
        "table b dropped",
    ]
    assert contract_changes(before, before) == []
