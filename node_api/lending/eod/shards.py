"""End of day in shards: which shard a line belongs to, and each shard's checkpoint.

A line's shard is a stable hash of its customer modulo the date's shard count:
CRC-32 (`zlib.crc32`) of the UTF-8 bytes of the line's `customer_ref`, mod `shards`. It is
the same in every process, on every machine and Python version (unlike `hash()`), and
every line of one customer falls in one shard, as it will fall in one Citus shard
(docs/SCALING.md). Each step's writes hang off the lines it works on (their accounts,
bills, charges, state and carries, their agreements' outbox rows), so two shards never
write the same per-line row; what they share is the node's own accounts (income,
provisions, suspense), whose balances add up to the same whatever the order.

The shard count of a date is fixed when its run first opens with more than one shard
(`open_shards`): `eod_shard` then holds a row per step and shard (see `tables`). A date
whose run began in one shard (it already has batches) finishes in one shard. Who runs
each shard is recorded by its claim (`claims`).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import exists, select, update
from sqlalchemy.engine import Connection

from node_api.ledger.sql import Row, in_values, insert_ignoring_conflicts
from node_api.lending.eod import checkpoint
from node_api.lending.eod.context import EodContext
from node_api.lending.eod.step import BatchResult, Step
from node_api.lending.eod.tables import (
    eod_batch_table,
    eod_run_table,
    eod_shard_table,
    eod_step_table,
)
from node_api.lending.lines import credit_line_table

SHARD_LOOKUP_CHUNK = 10_000
"""Line ids per query when finding their customers (SQLite's bound-parameter limit)."""


def compute_shard(customer_ref: str, shards: int) -> int:
    """The shard of a customer: CRC-32 of its UTF-8 reference, mod `shards`."""
    return zlib.crc32(customer_ref.encode("utf-8")) % shards


def fetch_line_shards(conn: Connection, line_ids: Sequence[int], shards: int) -> dict[int, int]:
    """Each existing line's shard (lines that do not exist are absent)."""
    lines = credit_line_table
    found: dict[int, int] = {}
    for start in range(0, len(line_ids), SHARD_LOOKUP_CHUNK):
        chunk = list(line_ids[start : start + SHARD_LOOKUP_CHUNK])
        rows = conn.execute(
            select(lines.c.id, lines.c.customer_ref).where(in_values(conn, lines.c.id, chunk))
        )
        for line_id, customer_ref in rows:
            found[int(line_id)] = compute_shard(str(customer_ref), shards)
    return found


def open_shards(conn: Connection, as_of: date, steps: Sequence[str], count: int) -> int:
    """The date's shard count, fixed the first time its run opens with `count` > 1 (the
    caller's write transaction has opened the run). Creates the `eod_shard` rows then."""
    conn.execute(
        select(eod_run_table.c.as_of).where(eod_run_table.c.as_of == as_of).with_for_update()
    )
    table = eod_shard_table
    recorded = conn.execute(
        select(table.c.shards).where(table.c.as_of == as_of).limit(1)
    ).scalar_one_or_none()
    if recorded is not None:
        return int(recorded)
    begun = conn.execute(select(exists().where(eod_batch_table.c.as_of == as_of))).scalar_one()
    if count <= 1 or begun:
        return 1
    statuses = {
        str(step): str(status)
        for step, status in conn.execute(
            select(eod_step_table.c.step, eod_step_table.c.status).where(
                eod_step_table.c.as_of == as_of
            )
        )
    }
    rows: list[Row] = [
        {"as_of": as_of, "step": step, "shard": shard, "shards": count,
         "status": statuses.get(step, checkpoint.RUNNING), "batches": 0, "last_line_id": 0}
        for step in steps
        for shard in range(count)
    ]  # fmt: skip
    insert_ignoring_conflicts(conn, table, rows, ["as_of", "step", "shard"])
    return count


@dataclass(frozen=True, slots=True)
class ShardPosition:
    """Where a shard of a step stands: done, its committed batches, the last line done,
    and its claim (`claims`: holder, epoch, expiry; None when never claimed)."""

    done: bool
    batches: int
    last_line_id: int
    claim_holder: str | None = None
    claim_epoch: int | None = None
    claim_expires_at: datetime | None = None


def _position(
    status: object,
    batches: object,
    last: object,
    holder: object,
    epoch: object,
    expires_at: object,
) -> ShardPosition:
    return ShardPosition(
        status == checkpoint.DONE,
        int(str(batches)),
        int(str(last)),
        None if holder is None else str(holder),
        None if epoch is None else int(str(epoch)),
        expires_at if isinstance(expires_at, datetime) else None,
    )


_t = eod_shard_table
_POSITION_COLUMNS = (
    _t.c.status,
    _t.c.batches,
    _t.c.last_line_id,
    _t.c.claim_holder,
    _t.c.claim_epoch,
    _t.c.claim_expires_at,
)


def fetch_shard_positions(conn: Connection, as_of: date, step: str) -> dict[int, ShardPosition]:
    table = eod_shard_table
    rows = conn.execute(
        select(table.c.shard, *_POSITION_COLUMNS).where(
            (table.c.as_of == as_of) & (table.c.step == step)
        )
    )
    return {int(row[0]): _position(*row[1:]) for row in rows}


def lock_shard(conn: Connection, as_of: date, step: str, shard: int) -> ShardPosition:
    """Lock the shard's row (one batch of a shard at a time, across runners and nodes);
    its position and claim."""
    table = eod_shard_table
    row = conn.execute(
        select(*_POSITION_COLUMNS)
        .where((table.c.as_of == as_of) & (table.c.step == step) & (table.c.shard == shard))
        .with_for_update()
    ).one()
    return _position(*row)


def list_shard_candidates(
    conn: Connection,
    ctx: EodContext,
    as_of: date,
    step: Step,
    positions: Mapping[int, ShardPosition],
    shards: int,
) -> dict[int, tuple[int, ...]]:
    """The step's candidate lines of each shard in `positions`, after that shard's last
    committed line: the step's candidates listed once (after the lowest of those lines),
    split by shard. The coordinator asks for every open shard of a step at once, a helper
    or a takeover for one shard; both get the lines a one-shard run would list."""
    if not positions:
        return {}
    after = min(position.last_line_id for position in positions.values())
    candidates = step.list_candidates(conn, ctx, as_of, after)
    shard_of = fetch_line_shards(conn, candidates, shards) if candidates else {}
    return {
        shard: tuple(
            line_id
            for line_id in candidates
            if shard_of.get(line_id) == shard and line_id > position.last_line_id
        )
        for shard, position in positions.items()
    }


def record_shard_batch(
    conn: Connection,
    as_of: date,
    step: str,
    shard: int,
    shards: int,
    position: ShardPosition,
    last_line_id: int,
    result: BatchResult,
    claim_expires_at: datetime | None = None,
) -> int:
    """Advance the locked shard past `last_line_id` and record the batch (`eod_batch`, so
    summaries and the console see it as any batch), renewing the shard's claim until
    `claim_expires_at` when given; return the batch's number."""
    table = eod_shard_table
    values: dict[str, object] = {"batches": position.batches + 1, "last_line_id": last_line_id}
    if claim_expires_at is not None:
        values["claim_expires_at"] = claim_expires_at
    conn.execute(
        update(table)
        .where((table.c.as_of == as_of) & (table.c.step == step) & (table.c.shard == shard))
        .values(**values)
    )
    batch_no = position.batches * shards + shard + 1
    checkpoint.record_batch(conn, as_of, step, batch_no, last_line_id, result)
    return batch_no


def finish_shard(conn: Connection, as_of: date, step: str, shard: int) -> None:
    table = eod_shard_table
    conn.execute(
        update(table)
        .where((table.c.as_of == as_of) & (table.c.step == step) & (table.c.shard == shard))
        .values(status=checkpoint.DONE)
    )
