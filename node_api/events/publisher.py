"""The publisher: tails each source table with a persisted cursor and publishes its
events to the stream, advancing the cursor only after every publish was acknowledged.

A crash between the acknowledgements and the cursor write re-publishes the same event
ids on restart; JetStream drops them (de-duplication by `Nats-Msg-Id` within the
stream's window), so each event is in the stream once.

The cursor only passes an id that exists or never will. On PostgreSQL a transaction can
commit a row above an id another transaction still holds uncommitted, so a missing id (a
gap) holds the cursor until every writing transaction of the database that began before
the gap was first seen has ended (`pg_stat_activity`); the next read then shows the
row, or the id was consumed by a rollback. Transactions of other databases on the same
server do not hold it. SQLite has one
writer at a time, so its gaps (deleted rows) are passed at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol

import sqlalchemy as sa

from node_api.events.delinquency import (
    fetch_changes,
    fetch_pending_run,
    store_position,
    store_published,
)
from node_api.events.schema import BusinessEvent
from node_api.events.sources import SOURCES, Source, SourceRow
from node_api.events.tables import CURSOR_TABLE
from node_api.kernel.db import Database, WriteFence
from node_api.kernel.outbox import get_utc_now

logger = logging.getLogger(__name__)

HOOK_AFTER_PUBLISH: Final = "after_publish"
"""Called after the acknowledgements, before the cursor write (tests crash there)."""


class EventSink(Protocol):
    """Where events go; `publish` returns once every event is acknowledged, else raises."""

    def publish(self, events: Sequence[BusinessEvent]) -> None: ...


@dataclass(frozen=True)
class PublisherConfig:
    page_size: int = 500
    """Rows read per source per step."""


NOW: Final = sa.text("SELECT clock_timestamp()")
WRITERS_SINCE: Final = sa.text(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
    " AND backend_xid IS NOT NULL AND xact_start < :seen AND pid <> pg_backend_pid()"
)
"""Transactions of this database that have written and began before `seen`."""


class EventPublisher:
    """Publishes every source's events once, in id order per source."""

    def __init__(
        self,
        database: Database,
        sink: EventSink,
        config: PublisherConfig | None = None,
        *,
        sources: Sequence[Source] = SOURCES,
        hook: Callable[[str], None] | None = None,
        fence: WriteFence | None = None,
    ) -> None:
        self.database = database
        self.sink = sink
        self.config = config or PublisherConfig()
        self.sources = sources
        self._hook = hook or (lambda _point: None)
        self._fence = fence
        self._concurrent_writers = database.backend == "postgresql"
        self._gaps: dict[tuple[str, int], datetime] = {}
        """(source, missing id) -> the database's time when the gap was first seen."""
        self.published = 0

    def step(self) -> bool:
        """One page of each source, then of the delinquency changes; True if a cursor moved."""
        moved = False
        for source in self.sources:
            moved |= self._step_source(source)
        return self._step_delinquency() or moved

    def run_until_idle(self, timeout_s: float) -> None:
        """Step until no cursor moves (tests and benchmarks)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.step():
                return
        raise TimeoutError(f"event publisher not idle after {timeout_s} s")

    def fetch_positions(self) -> dict[str, int]:
        with self.database.engine.connect() as conn:
            rows = conn.execute(sa.select(CURSOR_TABLE.c.source, CURSOR_TABLE.c.position)).all()
        return {str(source): int(position) for source, position in rows}

    def _step_source(self, source: Source) -> bool:
        with self.database.engine.connect() as conn:
            cursor = conn.execute(
                sa.select(CURSOR_TABLE.c.position).where(CURSOR_TABLE.c.source == source.name)
            ).scalar()
            stored = cursor is not None
            position = int(cursor) if cursor is not None else 0
            # Before the read: a transaction ended by now has its rows in the read below.
            settled = self._fetch_settled_gaps(conn, source.name)
            rows = source.fetch(conn, position, self.config.page_size)
            if not rows:
                return False
            new_position = self._advance(conn, source.name, position, rows, settled)
        if new_position == position:
            return False
        events = [event for row_id, event in rows if event is not None and row_id <= new_position]
        if events:
            self.sink.publish(events)
            self.published += len(events)
        self._hook(HOOK_AFTER_PUBLISH)
        self._store(source.name, position if stored else None, new_position)
        return True

    def _step_delinquency(self) -> bool:
        """Publish one page of bucket changes once a newer end-of-day run has finished."""
        with self.database.engine.connect() as conn:
            pending = fetch_pending_run(conn)
            if pending is None:
                return False
            changes = fetch_changes(conn, self.config.page_size)
        if changes:
            self.sink.publish([change.to_event() for change in changes])
            self.published += len(changes)
        self._hook(HOOK_AFTER_PUBLISH)
        previous, position = pending
        with self.database.begin_fenced(self._fence) as conn:
            store_published(conn, changes)
            if len(changes) < self.config.page_size:
                store_position(conn, previous, position)
        return True

    def _fetch_settled_gaps(self, conn: sa.Connection, name: str) -> set[int]:
        """The missing ids of `name` no transaction that began before they were first seen
        can still fill (every such writer of this database has ended)."""
        return {
            missing
            for (source, missing), seen in self._gaps.items()
            if source == name and conn.execute(WRITERS_SINCE, {"seen": seen}).scalar_one() == 0
        }

    def _advance(
        self,
        conn: sa.Connection,
        name: str,
        position: int,
        rows: Sequence[SourceRow],
        settled: set[int],
    ) -> int:
        """The highest id up to which every id was read or is known never to come."""
        for row_id, _event in rows:
            self._gaps.pop((name, row_id), None)  # filled: the row came
            if row_id != position + 1 and self._concurrent_writers:
                key = (name, position + 1)
                if key not in self._gaps:
                    self._gaps[key] = conn.execute(NOW).scalar_one()
                    break
                if key[1] not in settled:
                    break
                del self._gaps[key]
                logger.info("event source gap passed", extra={"source": name, "after": position})
            position = row_id
        return position

    def _store(self, name: str, previous: int | None, position: int) -> None:
        """Move the cursor from `previous` (None: no row yet) to `position`, or fail."""
        with self.database.begin_fenced(self._fence) as conn:
            if previous is None:
                conn.execute(
                    sa.insert(CURSOR_TABLE).values(
                        source=name, position=position, updated_at=get_utc_now()
                    )
                )
                return
            moved = conn.execute(
                sa.update(CURSOR_TABLE)
                .where(CURSOR_TABLE.c.source == name, CURSOR_TABLE.c.position == previous)
                .values(position=position, updated_at=get_utc_now())
            ).rowcount
            if moved != 1:
                raise RuntimeError(f"event cursor {name} moved under the publisher")
