"""Worker leases: one node at a time runs each background worker, with a fencing epoch.

A node takes a free or expired lease (the epoch rises by one), renews it well before it
expires, and releases it when it stops (so another node takes over at once instead of
after the time to live). The time to live bounds the takeover after a node dies without
releasing: its lease simply expires.

Liveness rests on the nodes' clocks (keep them NTP-synchronised, with a time to live far
above their skew); safety does not: a writer passes its epoch to `check_fence` inside
its own transaction, which share-locks the lease row (`SELECT ... FOR SHARE` on
PostgreSQL), so a write of a node that lost the lease is refused, and a takeover (an
update of that row) waits for every fenced write in flight to commit before it starts. A
share lock, so that a worker's nested transactions fence without waiting on each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from node_api.kernel.db import Database
from node_api.kernel.errors import CreditNetError
from node_api.kernel.outbox import get_utc_now
from oracles.scaleout_tables import LEASE_TABLE


class LeaseLost(CreditNetError):
    """The lease this write was fenced by belongs to another epoch (another node took it)."""

    code = "lease_lost"


@dataclass(frozen=True)
class LeaseHolder:
    """A lease row as stored."""

    name: str
    holder: str
    epoch: int
    expires_at: datetime


class LeaseStore:
    """Acquire, renew, release and fence the leases of one node (`holder`)."""

    def __init__(
        self,
        database: Database,
        holder: str,
        ttl_s: float,
        *,
        clock: Callable[[], datetime] = get_utc_now,
    ) -> None:
        self.database = database
        self.holder = holder
        self.ttl = timedelta(seconds=ttl_s)
        self._clock = clock

    def try_acquire(self, name: str) -> int | None:
        """The epoch this node holds `name` under after the call, or None (another node's).

        Renews a lease this node holds (same epoch); takes a free or expired one under a
        new epoch.
        """
        now = self._clock()
        lease = LEASE_TABLE
        try:
            with self.database.engine.begin() as conn:
                row = conn.execute(
                    sa.select(lease.c.holder, lease.c.epoch, lease.c.expires_at)
                    .where(lease.c.name == name)
                    .with_for_update()
                ).first()
                if row is None:
                    conn.execute(
                        sa.insert(lease).values(
                            name=name,
                            holder=self.holder,
                            epoch=1,
                            expires_at=now + self.ttl,
                            updated_at=now,
                        )
                    )
                    return 1
                if row.expires_at > now and row.holder != self.holder:
                    return None
                epoch = int(row.epoch)
                if row.expires_at <= now:
                    epoch += 1
                conn.execute(
                    sa.update(lease)
                    .where(lease.c.name == name)
                    .values(
                        holder=self.holder, epoch=epoch, expires_at=now + self.ttl, updated_at=now
                    )
                )
                return epoch
        except IntegrityError:
            return None  # another node inserted the first lease row at the same moment

    def renew(self, name: str, epoch: int) -> bool:
        """Extend a lease still held under `epoch`; False when it was lost."""
        now = self._clock()
        with self.database.engine.begin() as conn:
            renewed = conn.execute(
                sa.update(LEASE_TABLE)
                .where(
                    LEASE_TABLE.c.name == name,
                    LEASE_TABLE.c.holder == self.holder,
                    LEASE_TABLE.c.epoch == epoch,
                    LEASE_TABLE.c.expires_at > now,
                )
                .values(expires_at=now + self.ttl, updated_at=now)
            ).rowcount
        return renewed == 1

    def release(self, name: str, epoch: int) -> None:
        """Give the lease up now (expired at once), if still held under `epoch`."""
        now = self._clock()
        with self.database.engine.begin() as conn:
            conn.execute(
                sa.update(LEASE_TABLE)
                .where(
                    LEASE_TABLE.c.name == name,
                    LEASE_TABLE.c.holder == self.holder,
                    LEASE_TABLE.c.epoch == epoch,
                )
                .values(expires_at=now, updated_at=now)
            )

    def check_fence(self, conn: sa.Connection, name: str, epoch: int) -> None:
        """Inside the caller's write transaction: lock the lease row and refuse the write
        (LeaseLost) unless this node still holds `name` under `epoch`."""
        LeaseFence(name, self.holder, epoch)(conn)

    def fence(self, name: str, epoch: int) -> LeaseFence:
        return LeaseFence(name, self.holder, epoch)

    def fetch_all(self) -> list[LeaseHolder]:
        """Every worker's lease, by name (expired ones included: nobody runs that worker
        until a node takes it again)."""
        with self.database.engine.connect() as conn:
            return fetch_leases(conn)

    def fetch(self, name: str) -> LeaseHolder | None:
        with self.database.engine.connect() as conn:
            row = conn.execute(
                sa.select(
                    LEASE_TABLE.c.name,
                    LEASE_TABLE.c.holder,
                    LEASE_TABLE.c.epoch,
                    LEASE_TABLE.c.expires_at,
                ).where(LEASE_TABLE.c.name == name)
            ).first()
        return None if row is None else LeaseHolder(row.name, row.holder, row.epoch, row.expires_at)


def fetch_leases(conn: sa.Connection) -> list[LeaseHolder]:
    """Every lease row, by worker name."""
    rows = conn.execute(
        sa.select(
            LEASE_TABLE.c.name, LEASE_TABLE.c.holder, LEASE_TABLE.c.epoch, LEASE_TABLE.c.expires_at
        ).order_by(LEASE_TABLE.c.name)
    )
    return [LeaseHolder(row.name, row.holder, int(row.epoch), row.expires_at) for row in rows]


@dataclass(frozen=True)
class LeaseFence:
    """A term's write fence as a value (a `WriteFence`): plain data, so the worker
    processes a term starts (end of day's shards) check the same lease and epoch."""

    name: str
    holder: str
    epoch: int

    def __call__(self, conn: sa.Connection) -> None:
        held = conn.execute(
            sa.select(LEASE_TABLE.c.epoch)
            .where(
                LEASE_TABLE.c.name == self.name,
                LEASE_TABLE.c.holder == self.holder,
                LEASE_TABLE.c.epoch == self.epoch,
            )
            .with_for_update(read=True)
        ).first()
        if held is None:
            raise LeaseLost(f"lease {self.name} epoch {self.epoch} is no longer held by this node")
