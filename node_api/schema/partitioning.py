"""PostgreSQL's hash-partitioned layout by customer id: step 2 of issue #19's partitioning.

`partition_tables(engine, n)` converts, offline and in one transaction, every per-customer
table (`PARTITIONED`) into a table of the same name `PARTITION BY HASH (<customer
column>)` with `n` partitions `<table>_p0` … `<table>_p<n-1>`:

- the customer column (`customer_keys.customer_column`: a root's own column, else
  `customer_id`) becomes NOT NULL; the node's own rows written without a customer (its
  accounts, batches without a line and their postings and events) get the node's sentinel
  customer, the empty string;
- the primary key and every unique key are the old ones led by the customer column (a
  partitioned table can enforce a unique key only when it holds the partition key), so
  each is unique per customer; plain indexes and CHECK constraints are as they were, with
  the same names; and each such key's old columns get a plain index too
  (`ix_<table>_<columns>_lookup`), so the code's lookups that do not name the customer
  (a line, a limit node or an account by id, an account by code) probe one index per
  partition instead of scanning it;
- every foreign key between two partitioned tables becomes composite, the customer
  column first (`collections_promise (customer_id, case_id) -> collections_case
  (customer_ref, id)`): a row cannot name a parent of another customer. Foreign keys to
  other tables stay as they are; a foreign key from another table into a partitioned one
  cannot reference a key without the customer, so one found is refused (a new table
  referencing a per-customer one must name the customer, and be per-customer itself);
- columns, types, defaults and the id sequences are the old ones (each sequence is taken
  over by the new table: ids go on where they were).

The PII vault `customer` keeps a plain table: its unique `id_number_hash` (one customer
per identity document) spans customers, and PostgreSQL can enforce a unique key on a
partitioned table only when the key includes the partition key. In Citus it would be a
distributed table of its own, distributed by `id_number_hash` in its own colocation group
(joined with the per-customer tables by nothing but the customer id it hands out).

SQLite keeps the plain tables (`partition_count` is 0 there).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from node_api.ledger.accounts import NODE_CUSTOMER
from node_api.schema.customer_keys import PER_CUSTOMER, customer_column

PARTITIONED: frozenset[str] = PER_CUSTOMER - {"customer"}
"""The per-customer tables hash-partitioned by their customer column (all but the PII
vault, see the module's docstring)."""


_ACTIONS = {"a": "", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}


def _q(name: str) -> str:
    """`name` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _cols(names: Iterable[str]) -> str:
    return ", ".join(_q(n) for n in names)


def _partitions_of(conn: Connection, table: str) -> int | None:
    """None when `table` is a plain table, else its number of partitions (-1: no such
    table)."""
    row = conn.execute(
        text(
            "SELECT c.relkind, (SELECT count(*) FROM pg_inherits i WHERE i.inhparent = c.oid) "
            "FROM pg_class c WHERE c.oid = to_regclass(:name)"
        ),
        {"name": _q(table)},
    ).first()
    if row is None:
        return -1
    return int(row[1]) if row[0] == "p" else None


def partition_count(conn: Connection) -> int:
    """0 when `credit_line` is a plain table (and always on SQLite), else its number of
    hash partitions."""
    if conn.dialect.name != "postgresql":
        return 0
    return max(_partitions_of(conn, "credit_line") or 0, 0)


@dataclass(frozen=True, slots=True)
class _Key:
    """A primary or unique key constraint."""

    name: str
    primary: bool
    columns: tuple[str, ...]
    deferrable: bool
    deferred: bool


@dataclass(frozen=True, slots=True)
class _ForeignKey:
    name: str
    columns: tuple[str, ...]
    parent: str
    parent_columns: tuple[str, ...]
    definition: str  # pg_get_constraintdef
    on_update: str
    on_delete: str
    match: str
    deferrable: bool
    deferred: bool


@dataclass(frozen=True, slots=True)
class _Index:
    """An index not backing a constraint."""

    name: str
    definition: str  # pg_get_indexdef, naming the table and the index as they were
    unique: bool
    columns: tuple[str | None, ...]  # None: an expression


@dataclass(frozen=True, slots=True)
class _Table:
    name: str
    oid: int
    columns: tuple[str, ...]
    reloptions: tuple[str, ...]
    keys: tuple[_Key, ...]
    foreign_keys: tuple[_ForeignKey, ...]
    indexes: tuple[_Index, ...]
    sequences: tuple[tuple[str, str], ...]  # (sequence, column) the table owns


def _attnames(conn: Connection, oid: int) -> dict[int, str]:
    """The column names of the relation `oid`, by number."""
    rows = conn.execute(
        text("SELECT attnum, attname FROM pg_attribute WHERE attrelid = :oid"), {"oid": oid}
    ).all()
    return {int(n): str(name) for n, name in rows}


def _names(conn: Connection, oid: int, attnums: Sequence[int]) -> tuple[str, ...]:
    names = _attnames(conn, oid)
    return tuple(names[n] for n in attnums)


def _read_table(conn: Connection, name: str) -> _Table:
    """The live catalog's description of the plain table `name`."""
    oid = int(conn.execute(text("SELECT to_regclass(:n)::oid"), {"n": _q(name)}).scalar_one())
    columns = conn.execute(
        text(
            "SELECT attname, attidentity, attgenerated FROM pg_attribute "
            "WHERE attrelid = :oid AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
        ),
        {"oid": oid},
    ).all()
    for column, identity, generated in columns:
        if identity or generated:
            raise RuntimeError(
                f"{name}.{column} is an identity or generated column: partitioning copies "
                "serial columns only (there were none when it was written)"
            )
    triggers = conn.execute(
        text("SELECT tgname FROM pg_trigger WHERE tgrelid = :oid AND NOT tgisinternal"),
        {"oid": oid},
    ).all()
    if triggers:
        raise RuntimeError(f"{name} has triggers {[t[0] for t in triggers]}: not copied")
    reloptions = conn.execute(
        text("SELECT coalesce(reloptions, '{}') FROM pg_class WHERE oid = :oid"), {"oid": oid}
    ).scalar_one()
    keys: list[_Key] = []
    foreign_keys: list[_ForeignKey] = []
    for row in conn.execute(
        text(
            "SELECT conname, contype, conkey, confrelid::regclass::text, confkey, "
            "confupdtype, confdeltype, confmatchtype, condeferrable, condeferred, "
            "pg_get_constraintdef(oid), confrelid "
            "FROM pg_constraint WHERE conrelid = :oid ORDER BY conname"
        ),
        {"oid": oid},
    ).all():
        con, kind, conkey = str(row[0]), str(row[1]), list(row[2] or [])
        if kind in ("p", "u"):
            if "INCLUDE" in row[10] or "NULLS NOT DISTINCT" in row[10]:
                raise RuntimeError(f"{name}.{con} ({row[10]}): not supported")
            keys.append(_Key(con, kind == "p", _names(conn, oid, conkey), row[8], row[9]))
        elif kind == "f":
            foreign_keys.append(
                _ForeignKey(
                    con,
                    _names(conn, oid, conkey),
                    str(row[3]).strip('"'),
                    _names(conn, int(row[11]), list(row[4])),
                    str(row[10]),
                    str(row[5]),
                    str(row[6]),
                    str(row[7]),
                    bool(row[8]),
                    bool(row[9]),
                )
            )
        elif kind != "c":  # CHECK constraints come with the columns (CREATE TABLE ... LIKE)
            raise RuntimeError(f"{name}.{con}: constraint of kind {kind!r} not supported")
    indexes: list[_Index] = []
    for row in conn.execute(
        text(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid), i.indisunique, "
            "i.indkey::int2[], i.indnkeyatts "
            "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = :oid AND NOT EXISTS ("
            "  SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid "
            "  AND k.conrelid = :oid) "
            "ORDER BY c.relname"
        ),
        {"oid": oid},
    ).all():
        attnums = list(row[3])[: int(row[4])]
        named = _attnames(conn, oid)
        indexes.append(
            _Index(
                str(row[0]),
                str(row[1]),
                bool(row[2]),
                tuple(named.get(n) if n else None for n in attnums),
            )
        )
    sequences = conn.execute(
        text(
            "SELECT s.oid::regclass::text, a.attname FROM pg_depend d "
            "JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' "
            "JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid "
            "WHERE d.classid = 'pg_class'::regclass AND d.refobjid = :oid AND d.deptype = 'a' "
            "ORDER BY a.attnum"
        ),
        {"oid": oid},
    ).all()
    return _Table(
        name,
        oid,
        tuple(str(c[0]) for c in columns),
        tuple(reloptions),
        tuple(keys),
        tuple(foreign_keys),
        tuple(indexes),
        tuple((str(s), str(c)) for s, c in sequences),
    )


def _parents_first(tables: dict[str, _Table]) -> list[str]:
    """The tables ordered so every table comes after the tables its foreign keys name."""
    ordered: list[str] = []
    placed: set[str] = set()

    def place(name: str, path: tuple[str, ...]) -> None:
        if name in placed:
            return
        if name in path:
            raise RuntimeError(f"foreign keys form a cycle: {' -> '.join((*path, name))}")
        for fk in tables[name].foreign_keys:
            if fk.parent in tables and fk.parent != name:
                place(fk.parent, (*path, name))
        placed.add(name)
        ordered.append(name)

    for name in sorted(tables):
        place(name, ())
    return ordered


def _old_name(oid: int, what: str) -> str:
    """The name an old table's object is renamed to while the new one takes its name."""
    return f"creditnet_unpartitioned_{what}_{oid}"


def _key_columns(key: Sequence[str], customer: str) -> tuple[str, ...]:
    return tuple(key) if customer in key else (customer, *key)


def _foreign_key_sql(fk: _ForeignKey, child: str, parent: str | None) -> str:
    """The definition of `fk`; composite (led by both customer columns) when `parent`, the
    referenced table's customer column, is given."""
    if parent is None:
        return fk.definition
    pairs = list(zip(fk.columns, fk.parent_columns, strict=True))
    if (child, parent) in pairs:
        columns, parent_columns = fk.columns, fk.parent_columns
    elif child in fk.columns:
        raise RuntimeError(f"foreign key {fk.name} names {child} but not as the customer")
    else:
        columns, parent_columns = (child, *fk.columns), (parent, *fk.parent_columns)
    if fk.match == "f" and columns != fk.columns:
        raise RuntimeError(f"foreign key {fk.name} is MATCH FULL: not made composite")
    if fk.on_update in ("n", "d") and columns != fk.columns:
        raise RuntimeError(f"foreign key {fk.name}: ON UPDATE SET NULL/DEFAULT not supported")
    sql = f"FOREIGN KEY ({_cols(columns)}) REFERENCES {_q(fk.parent)} ({_cols(parent_columns)})"
    if fk.match == "f":
        sql += " MATCH FULL"
    if fk.on_update != "a":
        sql += f" ON UPDATE {_ACTIONS[fk.on_update]}"
    if fk.on_delete != "a":
        sql += f" ON DELETE {_ACTIONS[fk.on_delete]}"
        if fk.on_delete in ("n", "d") and columns != fk.columns:
            sql += f" ({_cols(fk.columns)})"  # never the customer column
    if fk.deferrable:
        sql += " DEFERRABLE INITIALLY " + ("DEFERRED" if fk.deferred else "IMMEDIATE")
    return sql


def _index_sql(index: _Index, customer: str) -> str:
    """`index` re-created on the new table: a unique one led by the customer column."""
    definition = index.definition
    if index.unique and customer not in index.columns:
        marker = " USING btree ("
        if definition.count(marker) != 1:
            raise RuntimeError(f"unique index {index.name} ({definition}): not supported")
        definition = definition.replace(marker, f"{marker}{_q(customer)}, ")
    return definition


def _lookups(table: _Table, customer: str) -> list[tuple[str, tuple[str, ...]]]:
    """The plain indexes (name, columns) that keep a lookup by a key without its customer
    (a row by `id`, an account by `code`, a batch by `business_key`) an index probe per
    partition: each primary or unique key the customer now leads, on its old columns,
    unless an index already begins with them."""
    led = [tuple(key.columns) for key in table.keys]
    led += [
        tuple(c for c in index.columns if c is not None)
        for index in table.indexes
        if index.unique and None not in index.columns
    ]
    present = {tuple(index.columns) for index in table.indexes}
    found: list[tuple[str, tuple[str, ...]]] = []
    for columns in led:
        if customer in columns or not columns:
            continue
        if any(have[: len(columns)] == columns for have in present):
            continue
        present.add(columns)
        found.append((f"ix_{table.name}_{'_'.join(columns)}"[:50] + "_lookup", columns))
    return found


def _convert(conn: Connection, tables: list[_Table], partitions: int) -> dict[str, int]:
    """Rename the plain tables out of the way, create the partitioned ones, copy the rows,
    add the foreign keys and drop the plain tables; answers the rows copied per table."""
    for table in tables:
        old = _old_name(table.oid, "table")
        conn.execute(text(f"ALTER TABLE {_q(table.name)} RENAME TO {_q(old)}"))
        for position, key in enumerate(table.keys):  # its index is renamed with it
            renamed = _old_name(table.oid, f"key_{position}")
            conn.execute(
                text(f"ALTER TABLE {_q(old)} RENAME CONSTRAINT {_q(key.name)} TO {_q(renamed)}")
            )
        for position, index in enumerate(table.indexes):
            renamed = _old_name(table.oid, f"index_{position}")
            conn.execute(text(f"ALTER INDEX {_q(index.name)} RENAME TO {_q(renamed)}"))
    for table in tables:
        old, customer = _old_name(table.oid, "table"), customer_column(table.name)
        conn.execute(
            text(
                f"CREATE TABLE {_q(table.name)} (LIKE {_q(old)} INCLUDING DEFAULTS "
                "INCLUDING CONSTRAINTS INCLUDING COMMENTS INCLUDING STORAGE "
                f"INCLUDING COMPRESSION) PARTITION BY HASH ({_q(customer)})"
            )
        )
        conn.execute(text(f"ALTER TABLE {_q(table.name)} ALTER {_q(customer)} SET NOT NULL"))
        options = f" WITH ({', '.join(table.reloptions)})" if table.reloptions else ""
        for remainder in range(partitions):
            conn.execute(
                text(
                    f"CREATE TABLE {_q(f'{table.name}_p{remainder}')} PARTITION OF "
                    f"{_q(table.name)} FOR VALUES WITH (MODULUS {partitions}, "
                    f"REMAINDER {remainder}){options}"
                )
            )
        for sequence, column in table.sequences:
            conn.execute(text(f"ALTER SEQUENCE {sequence} OWNED BY {_q(table.name)}.{_q(column)}"))
        for key in table.keys:
            kind = "PRIMARY KEY" if key.primary else "UNIQUE"
            deferrable = ""
            if key.deferrable:
                deferrable = " DEFERRABLE INITIALLY " + (
                    "DEFERRED" if key.deferred else "IMMEDIATE"
                )
            conn.execute(
                text(
                    f"ALTER TABLE {_q(table.name)} ADD CONSTRAINT {_q(key.name)} {kind} "
                    f"({_cols(_key_columns(key.columns, customer))}){deferrable}"
                )
            )
        for index in table.indexes:
            conn.execute(text(_index_sql(index, customer)))
        for name, columns in _lookups(table, customer):
            conn.execute(text(f"CREATE INDEX {_q(name)} ON {_q(table.name)} ({_cols(columns)})"))
    copied: dict[str, int] = {}
    for table in tables:
        customer = customer_column(table.name)
        picked = ", ".join(
            f"coalesce({_q(c)}, '{NODE_CUSTOMER}')" if c == customer else _q(c)
            for c in table.columns
        )
        copied[table.name] = conn.execute(
            text(
                f"INSERT INTO {_q(table.name)} ({_cols(table.columns)}) "  # noqa: S608
                f"SELECT {picked} FROM {_q(_old_name(table.oid, 'table'))}"
            )
        ).rowcount
    for table in tables:
        for fk in table.foreign_keys:
            parent = customer_column(fk.parent) if fk.parent in PARTITIONED else None
            sql = _foreign_key_sql(fk, customer_column(table.name), parent)
            conn.execute(text(f"ALTER TABLE {_q(table.name)} ADD CONSTRAINT {_q(fk.name)} {sql}"))
    for table in reversed(tables):
        conn.execute(text(f"DROP TABLE {_q(_old_name(table.oid, 'table'))}"))
    for table in tables:
        conn.execute(text(f"ANALYZE {_q(table.name)}"))
    return copied


def partition_tables(engine: Engine, partitions: int) -> dict[str, Any]:
    """Convert every table of `PARTITIONED` into a table hash-partitioned by its customer
    column with `partitions` partitions, copying the rows, in one transaction.

    OFFLINE: every node must be stopped (the conversion takes every per-customer table's
    exclusive lock, rewrites them, and the code's keys and conflict targets change with
    it). PostgreSQL only (ValueError on SQLite, or when `partitions` < 1). A no-op
    answering the current count when the tables are already partitioned with
    `partitions` partitions; ValueError when they are with another count (re-partitioning
    is not supported). Answers {"partitions": n, "tables": tables converted,
    "rows_copied": {table: rows}}.
    """
    if engine.dialect.name != "postgresql":
        raise ValueError(f"partitioning needs PostgreSQL, not {engine.dialect.name}")
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, not {partitions}")
    with engine.begin() as conn:
        counts = {name: _partitions_of(conn, name) for name in sorted(PARTITIONED)}
        missing = sorted(name for name, count in counts.items() if count == -1)
        if missing:
            raise RuntimeError(f"tables missing (is the database migrated?): {missing}")
        other = {name: c for name, c in counts.items() if c is not None and c != partitions}
        if other:
            raise ValueError(
                f"already partitioned with another number of partitions ({other}), not "
                f"{partitions}: re-partitioning is not supported"
            )
        plain = sorted(name for name, count in counts.items() if count is None)
        if not plain:
            return {"partitions": partitions, "tables": 0, "rows_copied": {}}
        outside = conn.execute(
            text(
                "SELECT conrelid::regclass::text, conname, confrelid::regclass::text "
                "FROM pg_constraint WHERE contype = 'f' "
                "AND confrelid = ANY(CAST(:plain AS regclass[])) "
                "AND NOT conrelid = ANY(CAST(:plain AS regclass[])) ORDER BY 1, 2"
            ),
            {"plain": [_q(name) for name in plain]},
        ).all()
        if outside:
            raise RuntimeError(
                "foreign keys from tables that are not partitioned by customer into ones "
                f"that are (they would need the customer column): {[tuple(r) for r in outside]}"
            )
        described = {name: _read_table(conn, name) for name in plain}
        ordered = [described[name] for name in _parents_first(described)]
        copied = _convert(conn, ordered, partitions)
    return {"partitions": partitions, "tables": len(ordered), "rows_copied": copied}
