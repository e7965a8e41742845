"""End of day in shards: which shard a line belongs to, and each shard's checkpoint.

A line's shard is a stable hash of its customer modulo the date's shard count:
CRC-32 (`zlib.crc32`) of the UTF-8 bytes of the line's `customer_ref`, mod `shards`. It is
the same in every process, on every machine and Python version (unlike `hash()`), and
every line of one customer falls in one shard, as it will fall in one Citus shard
(docs/SCALING.md). Each step's writes hang off the lines it works on (their accounts,
bills, charges, state and carries, their agreements' outbox rows), so two shards never
write the same per-line row; what they share is the node's own accounts (income,
provisions, suspense), whose balances add up to the same whatever the order.

The shard count of a date is fixed when its run first opens with more than one worker
(`open_shards`): `eod_shard` then holds a row per step and shard (see `tables`). A date
whose run began in one shard (it already has batches) finishes in one shard.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import exists, select, update
from sqlalchemy.engine import Connection

from node_api.ledger.sql import Row, in_values, insert_ignoring_conflicts
from node_api.lending.eod import checkpoint
from node_api.lending.eod.step import BatchResult
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


def open_shards(conn: Connection, as_of: date, steps: Sequence[str], workers: int) -> int:
    """The date's shard count, fixed the first time its run opens with `workers` > 1 (the
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
    if workers <= 1 or begun:
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
        {"as_of": as_of, "step": step, "shard": shard, "shards": workers,
         "status": statuses.get(step, checkpoint.RUNNING), "batches": 0, "last_line_id": 0}
        for step in steps
        for shard in range(workers)
    ]  # fmt: skip
    insert_ignoring_conflicts(conn, table, rows, ["as_of", "step", "shard"])
    return workers


@dataclass(frozen=True, slots=True)
class ShardPosition:
    """Where a shard of a step stands: done, its committed batches, the last line done."""

    done: bool
    batches: int
    last_line_id: int


def fetch_shard_positions(conn: Connection, as_of: date, step: str) -> dict[int, ShardPosition]:
    table = eod_shard_table
    rows = conn.execute(
        select(table.c.shard, table.c.status, table.c.batches, table.c.last_line_id).where(
            (table.c.as_of == as_of) & (table.c.step == step)
        )
    )
    return {
        int(shard): ShardPosition(status == checkpoint.DONE, int(batches), int(last))
        for shard, status, batches, last in rows
    }


def lock_shard(conn: Connection, as_of: date, step: str, shard: int) -> ShardPosition:
    """Lock the shard's row (one batch of a shard at a time, across runners); its position."""
    table = eod_shard_table
    status, batches, last = conn.execute(
        select(table.c.status, table.c.batches, table.c.last_line_id)
        .where((table.c.as_of == as_of) & (table.c.step == step) & (table.c.shard == shard))
        .with_for_update()
    ).one()
    return ShardPosition(status == checkpoint.DONE, int(batches), int(last))


def record_shard_batch(
    conn: Connection,
    as_of: date,
    step: str,
    shard: int,
    shards: int,
    position: ShardPosition,
    last_line_id: int,
    result: BatchResult,
) -> int:
    """Advance the locked shard past `last_line_id` and record the batch (`eod_batch`, so
    summaries and the console see it as any batch); return the batch's number."""
    table = eod_shard_table
    conn.execute(
        update(table)
        .where((table.c.as_of == as_of) & (table.c.step == step) & (table.c.shard == shard))
        .values(batches=position.batches + 1, last_line_id=last_line_id)
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
