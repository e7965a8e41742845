"""The indexer's database side: events, block hashes, the checkpoint and the mirror.

A range of blocks is stored in one transaction (its events, the hashes of its
blocks that carry events and of its last block, the new checkpoint, and the mirror
rows its events change), so a crash never leaves half a range. A reorg rollback is
one transaction too: events above the fork go, and every subject they touched is
rebuilt from the events that remain.

Bulk rows go in set-based: on PostgreSQL through `COPY ... FROM STDIN` on the range's own
transaction (one round trip and one server-side statement for a range's events, instead
of one prepared INSERT executed per row, which was most of a catch-up's time); elsewhere
as one executemany. Either way a duplicate (block hash, log index) fails the whole range,
so exactly-once rests on the same unique key and the same single transaction. A subject
whose first event in the range starts its state afresh (`chain_mirror.STATE_STARTING_EVENTS`,
e.g. `AgreementOpened`) is folded without reading its current row: the fold ignores it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypedDict, TypeVar, cast

import sqlalchemy as sa

from node_api.kernel.db import Database
from node_api.kernel.outbox import get_utc_now
from oracles.chain_mirror import (
    STATE_STARTING_EVENTS,
    AgreementRow,
    CycleMirror,
    CycleRow,
    EventRecord,
    LineStateRow,
    MirrorState,
    PartnerRow,
    PositionRow,
    fold_subject,
    get_subject_key,
    get_subject_type,
)
from oracles.tables import (
    BLOCK_TABLE,
    CHAIN_AGREEMENT_TABLE,
    CHAIN_CYCLE_TABLE,
    CHAIN_LINE_STATE_TABLE,
    CHAIN_PARTNER_TABLE,
    CHAIN_POSITION_TABLE,
    CHECKPOINT_TABLE,
    EVENT_TABLE,
)

IN_CHUNK: Final = 2_000
"""Keys per `IN (...)` list: within SQLite's 32,766 and PostgreSQL's 65,535 parameters."""
_Item = TypeVar("_Item")
MIRROR_TABLES: Final = {
    "agreement": (CHAIN_AGREEMENT_TABLE, CHAIN_AGREEMENT_TABLE.c.agreement_id),
    "cycle": (CHAIN_CYCLE_TABLE, CHAIN_CYCLE_TABLE.c.cycle_id),
    "partner": (CHAIN_PARTNER_TABLE, CHAIN_PARTNER_TABLE.c.partner_id),
    "line_state": (CHAIN_LINE_STATE_TABLE, CHAIN_LINE_STATE_TABLE.c.cycle_id),
}


MirrorRow = AgreementRow | CycleRow | PartnerRow | LineStateRow
"""A row of one of the mirror tables but the positions'."""


class EventRow(TypedDict):
    """Insert parameters of one `EVENT_TABLE` row (`args` in the JSON form of the codec)."""

    contract: str
    event: str
    subject: str
    args: dict[str, Any]
    block_number: int
    block_hash: str
    log_index: int
    tx_hash: str


class BlockRow(TypedDict):
    """Insert parameters of one `BLOCK_TABLE` row."""

    block_number: int
    block_hash: str
    parent_hash: str


@dataclass(frozen=True)
class StoredEvent:
    """An event to store: where it is on the chain and what it says."""

    block_number: int
    block_hash: str
    log_index: int
    tx_hash: str
    contract: str
    event: str
    subject: str
    args: dict[str, Any]

    def to_record(self) -> EventRecord:
        return EventRecord(
            self.contract, self.event, self.args, self.block_number, self.log_index, self.tx_hash
        )


@dataclass(frozen=True)
class BlockRef:
    """A block the indexer has seen: number, hash and parent hash."""

    number: int
    hash: str
    parent_hash: str


def _chunks(values: Sequence[_Item]) -> Iterable[Sequence[_Item]]:
    for start in range(0, len(values), IN_CHUNK):
        yield values[start : start + IN_CHUNK]


class EventStore:
    """Every statement the indexer runs, for one named indexer."""

    def __init__(self, database: Database, name: str = "main") -> None:
        self.database = database
        self.name = name

    def fetch_checkpoint(self) -> BlockRef | None:
        with self.database.engine.connect() as conn:
            row = conn.execute(
                sa.select(CHECKPOINT_TABLE.c.block_number, CHECKPOINT_TABLE.c.block_hash).where(
                    CHECKPOINT_TABLE.c.name == self.name
                )
            ).first()
        return None if row is None else BlockRef(int(row[0]), str(row[1]), "")

    def fetch_recent_blocks(self, at_or_below: int, limit: int) -> list[BlockRef]:
        """Stored block hashes, highest first, for finding a fork point."""
        with self.database.engine.connect() as conn:
            rows = conn.execute(
                sa.select(BLOCK_TABLE.c.block_number, BLOCK_TABLE.c.block_hash)
                .where(BLOCK_TABLE.c.block_number <= at_or_below)
                .order_by(BLOCK_TABLE.c.block_number.desc())
                .limit(limit)
            ).all()
        return [BlockRef(int(number), str(block_hash), "") for number, block_hash in rows]

    def store_range(
        self, events: Sequence[StoredEvent], blocks: Sequence[BlockRef], checkpoint: BlockRef
    ) -> None:
        """Store a range of blocks: events, block hashes, mirror changes, checkpoint."""
        with self.database.engine.begin() as conn:
            insert_rows(conn, EVENT_TABLE, [_event_row(event) for event in events])
            _replace_blocks(conn, blocks)
            _apply_to_mirror(conn, events)
            _write_checkpoint(conn, self.name, checkpoint)

    def rollback_above(self, fork_base: BlockRef) -> int:
        """Forget everything above `fork_base` and rebuild what it touched; events removed."""
        with self.database.engine.begin() as conn:
            subjects = [
                str(subject)
                for (subject,) in conn.execute(
                    sa.select(EVENT_TABLE.c.subject)
                    .where(EVENT_TABLE.c.block_number > fork_base.number)
                    .distinct()
                )
            ]
            removed = conn.execute(
                sa.delete(EVENT_TABLE).where(EVENT_TABLE.c.block_number > fork_base.number)
            ).rowcount
            conn.execute(
                sa.delete(BLOCK_TABLE).where(BLOCK_TABLE.c.block_number > fork_base.number)
            )
            _rebuild_subjects(conn, subjects)
            _write_checkpoint(conn, self.name, fork_base)
        return int(removed or 0)

    def prune_blocks(self, below: int) -> None:
        """Drop block hashes older than `below`, keeping the newest of them as an anchor."""
        with self.database.engine.begin() as conn:
            anchor = conn.execute(
                sa.select(sa.func.max(BLOCK_TABLE.c.block_number)).where(
                    BLOCK_TABLE.c.block_number < below
                )
            ).scalar()
            if anchor is not None:
                conn.execute(sa.delete(BLOCK_TABLE).where(BLOCK_TABLE.c.block_number < anchor))

    def count_events(self) -> int:
        with self.database.engine.connect() as conn:
            return int(
                conn.execute(sa.select(sa.func.count()).select_from(EVENT_TABLE)).scalar_one()
            )


def _event_row(event: StoredEvent) -> EventRow:
    return {
        "block_number": event.block_number,
        "block_hash": event.block_hash,
        "log_index": event.log_index,
        "tx_hash": event.tx_hash,
        "contract": event.contract,
        "event": event.event,
        "subject": event.subject,
        "args": event.args,
    }


def _replace_blocks(conn: sa.Connection, blocks: Sequence[BlockRef]) -> None:
    unique = {block.number: block for block in blocks}
    if not unique:
        return
    numbers = sorted(unique)
    for chunk in _chunks(numbers):
        conn.execute(sa.delete(BLOCK_TABLE).where(BLOCK_TABLE.c.block_number.in_(chunk)))
    rows: list[BlockRow] = [
        {"block_number": n, "block_hash": unique[n].hash, "parent_hash": unique[n].parent_hash}
        for n in numbers
    ]
    insert_rows(conn, BLOCK_TABLE, rows)


def _write_checkpoint(conn: sa.Connection, name: str, checkpoint: BlockRef) -> None:
    values = {
        "block_number": checkpoint.number,
        "block_hash": checkpoint.hash,
        "updated_at": get_utc_now(),
    }
    updated = conn.execute(
        sa.update(CHECKPOINT_TABLE).where(CHECKPOINT_TABLE.c.name == name).values(**values)
    ).rowcount
    if not updated:
        conn.execute(sa.insert(CHECKPOINT_TABLE).values(name=name, **values))


def insert_rows(conn: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert `rows` (all with the same keys) in one set-based step on `conn`'s transaction:
    COPY on PostgreSQL through psycopg, one executemany elsewhere."""
    if not rows:
        return
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        _copy_rows(conn, table, rows)
    else:
        conn.execute(sa.insert(table), rows)


def _copy_rows(conn: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """`COPY table (columns) FROM STDIN`, one `write_row` per row (psycopg formats and
    escapes the text); JSON columns serialised as the `sa.JSON` type does (`json.dumps`)."""
    names = list(rows[0])
    as_json = [isinstance(table.c[name].type, sa.JSON) for name in names]
    preparer = conn.dialect.identifier_preparer
    columns = ", ".join(preparer.quote(name) for name in names)
    statement = f"COPY {preparer.format_table(table)} ({columns}) FROM STDIN"
    driver: Any = conn.connection.driver_connection
    driver_error: type[Exception] = conn.dialect.loaded_dbapi.Error
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(
                    [
                        json.dumps(row[name]) if is_json else row[name]
                        for name, is_json in zip(names, as_json, strict=True)
                    ]
                )
    except driver_error as error:
        # The same exception classes as an INSERT's (a duplicate key: IntegrityError).
        raise sa.exc.DBAPIError.instance(statement, None, error, driver_error) from error


def _apply_to_mirror(conn: sa.Connection, events: Sequence[StoredEvent]) -> None:
    """Fold new events into the current mirror rows of the subjects they touch (a subject
    whose first event starts its state afresh is folded from nothing: see module doc)."""
    by_subject: dict[str, list[EventRecord]] = defaultdict(list)
    for event in events:
        if get_subject_type(event.subject) in MIRROR_TABLES:
            by_subject[event.subject].append(event.to_record())
    if not by_subject:
        return
    to_load = [
        s for s, records in by_subject.items() if records[0].event not in STATE_STARTING_EVENTS
    ]
    current = _load_states(conn, to_load) if to_load else {}
    states = {
        subject: fold_subject(subject, current.get(subject), records)
        for subject, records in by_subject.items()
    }
    _write_states(conn, states)


def _rebuild_subjects(conn: sa.Connection, subjects: Sequence[str]) -> None:
    """Refold `subjects` from scratch from the events that remain."""
    subjects = [s for s in subjects if get_subject_type(s) in MIRROR_TABLES]
    records: dict[str, list[EventRecord]] = {subject: [] for subject in subjects}
    for chunk in _chunks(subjects):
        rows = conn.execute(
            sa.select(
                EVENT_TABLE.c.subject,
                EVENT_TABLE.c.contract,
                EVENT_TABLE.c.event,
                EVENT_TABLE.c.args,
                EVENT_TABLE.c.block_number,
                EVENT_TABLE.c.log_index,
                EVENT_TABLE.c.tx_hash,
            )
            .where(EVENT_TABLE.c.subject.in_(chunk))
            .order_by(EVENT_TABLE.c.block_number, EVENT_TABLE.c.log_index)
        )
        for subject, *fields in rows:
            records[subject].append(EventRecord(*fields))
    _write_states(conn, {s: fold_subject(s, None, records[s]) for s in subjects})


def _load_states(conn: sa.Connection, subjects: Sequence[str]) -> dict[str, MirrorState]:
    """Current mirror rows of `subjects` (cycles with their positions)."""
    keys_by_type: dict[str, list[str | int]] = defaultdict(list)
    for subject in subjects:
        keys_by_type[get_subject_type(subject)].append(get_subject_key(subject))
    rows: dict[str, MirrorRow] = {}
    for subject_type, keys in keys_by_type.items():
        table, key_column = MIRROR_TABLES[subject_type]
        for chunk in _chunks(keys):
            for row in conn.execute(sa.select(table).where(key_column.in_(chunk))).mappings():
                rows[f"{subject_type}:{row[key_column.name]}"] = cast(MirrorRow, dict(row))
    states: dict[str, MirrorState] = {}
    for subject, mirrored in rows.items():
        if get_subject_type(subject) != "cycle":
            states[subject] = cast("AgreementRow | PartnerRow | LineStateRow", mirrored)
            continue
        cycle = cast(CycleRow, mirrored)
        positions = conn.execute(
            sa.select(CHAIN_POSITION_TABLE).where(
                CHAIN_POSITION_TABLE.c.cycle_id == cycle["cycle_id"]
            )
        ).mappings()
        states[subject] = CycleMirror(
            cycle=cycle,
            positions={int(p["partner_id"]): cast(PositionRow, dict(p)) for p in positions},
        )
    return states


def _write_states(conn: sa.Connection, states: dict[str, MirrorState | None]) -> None:
    """Replace the mirror rows of each subject by its new state (None: no row)."""
    keys_by_type: dict[str, list[str | int]] = defaultdict(list)
    rows_by_type: dict[str, list[MirrorRow]] = defaultdict(list)
    positions: list[PositionRow] = []
    for subject, state in states.items():
        subject_type = get_subject_type(subject)
        keys_by_type[subject_type].append(get_subject_key(subject))
        if state is None:
            continue
        if subject_type == "cycle":
            cycle = cast(CycleMirror, state)
            rows_by_type[subject_type].append(cycle["cycle"])
            positions.extend(cycle["positions"].values())
        else:
            rows_by_type[subject_type].append(cast(MirrorRow, state))
    for subject_type, keys in keys_by_type.items():
        table, key_column = MIRROR_TABLES[subject_type]
        for chunk in _chunks(keys):
            conn.execute(sa.delete(table).where(key_column.in_(chunk)))
            if subject_type == "cycle":
                conn.execute(
                    sa.delete(CHAIN_POSITION_TABLE).where(
                        CHAIN_POSITION_TABLE.c.cycle_id.in_(chunk)
                    )
                )
        insert_rows(conn, table, rows_by_type[subject_type])
    insert_rows(conn, CHAIN_POSITION_TABLE, positions)
