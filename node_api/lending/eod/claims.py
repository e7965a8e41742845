"""Claims on the shards of a step: which worker, of which node, runs each shard.

A shard of a step (an `eod_shard` row) is run by whoever claims it: one of the
coordinator's workers (the node holding the end-of-day lease, see `parallel`) or a
helper on another node (`helper`). A claim names its holder and an epoch that rises by
one at every claim of the shard, and lasts `ttl_s` unless renewed: every batch the
holder commits renews it, in the batch's own transaction.

A worker claims a shard that is not done and is free: never claimed, its claim released
(a worker that failed gives its claim back) or expired (its holder died, or stalled
longer than the time to live), or held under the claimer's own holder name (a
coordinator runs each shard on one worker at a time, so a claim of its own name that it
meets is one an earlier run of it left behind). The claiming query locks the row with
`FOR UPDATE SKIP LOCKED`: a row locked by a batch in flight is skipped, not waited for.

Safety rests on the epoch, never on the clocks: every batch locks its shard's row (as it
always has, see `shards.lock_shard`) and writes only if the row still carries its own
holder and epoch; a takeover changes them under the same row lock, so it waits for the
batch in flight to commit, and the old holder's next batch is refused
(`ShardClaimLost`): it writes nothing and stops. The new holder resumes after the
shard's last committed batch. Liveness rests on the nodes' clocks (keep them
synchronised, with a time to live far above their skew and above the longest batch).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement

from node_api.kernel.errors import CreditNetError
from node_api.kernel.outbox import get_utc_now
from node_api.ledger.sql import begin_write
from node_api.lending.eod import checkpoint
from node_api.lending.eod.shards import ShardPosition
from node_api.lending.eod.tables import eod_shard_table


class ShardClaimLost(CreditNetError):
    """Another worker took this shard over: the batch wrote nothing."""

    code = "eod_shard_claim_lost"


@dataclass(frozen=True, slots=True)
class ShardClaim:
    """A worker's claim on one shard of a step: plain data, sent to worker processes."""

    as_of: date
    step: str
    shard: int
    shards: int
    holder: str
    epoch: int
    ttl_s: float


def is_claimable(position: ShardPosition, holder: str, now: datetime) -> bool:
    """Whether `holder` may claim the shard now (module docstring)."""
    if position.done:
        return False
    return (
        position.claim_holder is None
        or position.claim_holder == holder
        or position.claim_expires_at is None
        or position.claim_expires_at <= now
    )


def claim_shard(
    conn: Connection,
    as_of: date,
    step: str,
    holder: str,
    ttl_s: float,
    *,
    shard: int | None = None,
    highest_first: bool = False,
) -> ShardClaim | None:
    """Claim `shard` of the step, or (None) the first claimable one in shard order
    (`highest_first`: from the last: helpers start at the other end from the
    coordinator); in its own write transaction. None when none can be claimed now."""
    table = eod_shard_table
    now = get_utc_now()
    with conn.begin():
        begin_write(conn)
        claimable = (
            (table.c.as_of == as_of)
            & (table.c.step == step)
            & (table.c.status == checkpoint.RUNNING)
            & or_(
                table.c.claim_holder.is_(None),
                table.c.claim_holder == holder,
                table.c.claim_expires_at.is_(None),
                table.c.claim_expires_at <= now,
            )
        )
        if shard is not None:
            claimable = claimable & (table.c.shard == shard)
        query = (
            select(table.c.shard, table.c.shards, table.c.claim_epoch)
            .where(claimable)
            .order_by(table.c.shard.desc() if highest_first else table.c.shard)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        row = conn.execute(query).first()
        if row is None:
            return None
        claimed, shards, epoch = int(row[0]), int(row[1]), int(row[2] or 0) + 1
        conn.execute(
            update(table)
            .where(_row(as_of, step, claimed))
            .values(
                claim_holder=holder,
                claim_epoch=epoch,
                claim_expires_at=now + timedelta(seconds=ttl_s),
            )
        )
    return ShardClaim(as_of, step, claimed, shards, holder, epoch, ttl_s)


def check_claim(position: ShardPosition, claim: ShardClaim) -> None:
    """Inside a batch's transaction, the shard's row locked: refuse unless the row still
    carries this claim."""
    if (position.claim_holder, position.claim_epoch) != (claim.holder, claim.epoch):
        raise ShardClaimLost(
            f"{claim.step} shard {claim.shard} of {claim.as_of.isoformat()} was taken over"
            f" (claim epoch {claim.epoch}, now {position.claim_epoch})",
            code="eod_shard_claim_lost",
        )


def renewed_expiry(claim: ShardClaim) -> datetime:
    """When the claim expires if renewed now (by a batch committing)."""
    return get_utc_now() + timedelta(seconds=claim.ttl_s)


def release_claim(conn: Connection, claim: ShardClaim) -> None:
    """Give the claim back at once (expired now) if still held, in its own transaction:
    a worker that failed lets another take the shard without waiting out its time."""
    table = eod_shard_table
    with conn.begin():
        begin_write(conn)
        conn.execute(
            update(table)
            .where(
                _row(claim.as_of, claim.step, claim.shard)
                & (table.c.claim_holder == claim.holder)
                & (table.c.claim_epoch == claim.epoch)
            )
            .values(claim_expires_at=get_utc_now())
        )


def _row(as_of: date, step: str, shard: int) -> ColumnElement[bool]:
    table = eod_shard_table
    return (table.c.as_of == as_of) & (table.c.step == step) & (table.c.shard == shard)
