"""How far behind the relayer is: the age of the oldest outbox row not yet confirmed.

The outbox depth alone does not say whether the relayer keeps up (a hundred rows queued
a second ago are fine; one row queued an hour ago is not). The oldest row still pending
or sent, by kind, gives the relayer's lag in time; the caller passes the instant to
measure from. Parked rows are left out: they wait for an operator, not for the relayer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from node_api.kernel.outbox_table import OUTBOX_TABLE, OutboxStatus

WAITING = (OutboxStatus.PENDING.value, OutboxStatus.SENT.value)


@dataclass(frozen=True, slots=True)
class OutboxAge:
    kind: str
    waiting: int
    """Rows pending or sent (not confirmed, not parked)."""
    oldest_created_at: datetime
    oldest_age_s: float


def fetch_outbox_ages(conn: Connection, now: datetime) -> list[OutboxAge]:
    """Per kind with waiting rows: how many wait and the age of the oldest, oldest first."""
    table = OUTBOX_TABLE
    rows = conn.execute(
        select(table.c.kind, func.count(), func.min(table.c.created_at))
        .where(table.c.status.in_(WAITING))
        .group_by(table.c.kind)
    ).all()
    naive_now = now.astimezone(UTC).replace(tzinfo=None)
    ages = [
        OutboxAge(
            kind=str(kind),
            waiting=int(count),
            oldest_created_at=oldest.replace(tzinfo=UTC),
            oldest_age_s=max((naive_now - oldest).total_seconds(), 0.0),
        )
        for kind, count, oldest in rows
    ]
    return sorted(ages, key=lambda age: age.oldest_created_at)
