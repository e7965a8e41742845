"""Delinquency changes: end of day updates each line's bucket in place
(`line_delinquency`), so there is no log to tail. After each finished end-of-day run the
publisher compares the buckets with the ones it last published (`event_line_bucket`,
none meaning current) and publishes every difference as `delinquency.changed`.

The event id is `delinquency:<line>:<as_of>:<bucket>`, stable across a re-publication: a
crash after the acknowledgements and before the published buckets are written compares
again, finds the same differences and publishes the same ids, which the stream drops. A
publisher that falls several runs behind publishes the net change since the last run it
saw (one event per line, dated by the line's last update).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Final

import sqlalchemy as sa

from node_api.events.schema import BusinessEvent, EventType
from node_api.events.tables import CURSOR_TABLE, LINE_BUCKET_TABLE
from node_api.kernel.outbox import get_utc_now
from node_api.lending.billing_rules import DelinquencyBucket
from node_api.lending.eod.checkpoint import DONE
from node_api.lending.eod.tables import eod_run_table, line_delinquency_table

SOURCE: Final = "delinquency"
CURRENT: Final = DelinquencyBucket.M0.value


@dataclass(frozen=True)
class BucketChange:
    credit_line_id: int
    bucket_from: str
    bucket: str
    days_past_due: int
    as_of: date

    def to_event(self) -> BusinessEvent:
        return BusinessEvent(
            id=f"delinquency:{self.credit_line_id}:{self.as_of.isoformat()}:{self.bucket}",
            type=EventType.DELINQUENCY_CHANGED,
            as_of=self.as_of,
            data={
                "credit_line_id": self.credit_line_id,
                "bucket_from": self.bucket_from,
                "bucket": self.bucket,
                "days_past_due": self.days_past_due,
            },
        )


def compute_position(as_of: date) -> int:
    """A run's date as the cursor's integer position (yyyymmdd)."""
    return as_of.year * 10_000 + as_of.month * 100 + as_of.day


def fetch_pending_run(conn: sa.Connection) -> tuple[int | None, int] | None:
    """(stored position or None, position of the latest finished run) when a finished
    end-of-day run is newer than the cursor; None otherwise."""
    latest = conn.execute(
        sa.select(sa.func.max(eod_run_table.c.as_of)).where(eod_run_table.c.status == DONE)
    ).scalar()
    if latest is None:
        return None
    stored = conn.execute(
        sa.select(CURSOR_TABLE.c.position).where(CURSOR_TABLE.c.source == SOURCE)
    ).scalar()
    target = compute_position(latest)
    if stored is not None and int(stored) >= target:
        return None
    return (None if stored is None else int(stored)), target


def fetch_changes(conn: sa.Connection, limit: int) -> list[BucketChange]:
    """Lines whose bucket differs from the one last published, in line id order."""
    state, published = line_delinquency_table, LINE_BUCKET_TABLE
    last = sa.func.coalesce(published.c.bucket, CURRENT)
    rows = conn.execute(
        sa.select(
            state.c.credit_line_id, last, state.c.bucket, state.c.days_past_due, state.c.as_of
        )
        .select_from(
            state.outerjoin(published, published.c.credit_line_id == state.c.credit_line_id)
        )
        .where(last != state.c.bucket)
        .order_by(state.c.credit_line_id)
        .limit(limit)
    ).all()
    return [
        BucketChange(int(line), str(before), str(after), int(days), as_of)
        for line, before, after, days, as_of in rows
    ]


def store_published(conn: sa.Connection, changes: Sequence[BucketChange]) -> None:
    """Remember the published buckets (in the caller's fenced transaction)."""
    if not changes:
        return
    table = LINE_BUCKET_TABLE
    lines = [change.credit_line_id for change in changes]
    conn.execute(sa.delete(table).where(table.c.credit_line_id.in_(lines)))
    conn.execute(
        sa.insert(table),
        [
            {"credit_line_id": c.credit_line_id, "bucket": c.bucket, "as_of": c.as_of}
            for c in changes
        ],
    )


def store_position(conn: sa.Connection, previous: int | None, position: int) -> None:
    """Move the delinquency cursor to the run it has fully compared."""
    if previous is None:
        conn.execute(
            sa.insert(CURSOR_TABLE).values(
                source=SOURCE, position=position, updated_at=get_utc_now()
            )
        )
        return
    moved = conn.execute(
        sa.update(CURSOR_TABLE)
        .where(CURSOR_TABLE.c.source == SOURCE, CURSOR_TABLE.c.position == previous)
        .values(position=position, updated_at=get_utc_now())
    ).rowcount
    if moved != 1:
        raise RuntimeError("the delinquency cursor moved under the publisher")
