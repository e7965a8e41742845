"""End of day in shards by customer, on both databases: two workers write exactly the
books one worker writes, a shard that fails mid-step (or a runner killed mid-step) is
resumed from its own checkpoint, and the day then ends with the books of a run that
never failed. On SQLite the shards run one after another; on PostgreSQL in worker
processes (and threads, where a test hooks a batch)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from node_api.kernel.db import Database, fence_this_thread
from node_api.lending.eod import EodContext, run_eod_through
from node_api.lending.eod.parallel import ShardFailedError, ShardPool, ShardTask
from node_api.lending.eod.shards import compute_shard
from node_api.lending.eod.tables import eod_batch_table, eod_shard_table
from oracles.leases import LeaseLost, LeaseStore
from tests.integration.lending.eod_helpers import cloned, seed_billed_lines, snapshot

OPENED = date(2025, 3, 1)
THROUGH = date(2025, 4, 6)
DUE_DAY = date(2025, 3, 25)
"""The bills cut on 5 March are due (the due step has two batches in each shard)."""
BATCH_LINES = 2
CUSTOMERS = [f"c-{i}" for i in range(10)]
CHILD = Path(__file__).with_name("eod_crash_child.py")
ROOT = Path(__file__).resolve().parents[3]


class InjectedFault(Exception):
    pass


def _seed(database: Database) -> None:
    """Ten lines billed on the 5th with purchases; after the first bill a third pay it in
    full, a third the minimum and a third nothing (every step has work in both shards)."""
    seed_billed_lines(database, OPENED, CUSTOMERS)


def _one_worker(database: Database, through: date = THROUGH) -> dict[str, object]:
    with cloned(database) as twin:
        run_eod_through(twin, through, ctx=EodContext(batch_lines=BATCH_LINES))
        return snapshot(twin)


def _shard_rows(database: Database, as_of: date) -> list[tuple[str, int, int, str, int]]:
    table = eod_shard_table
    with database.engine.connect() as conn:
        rows = conn.execute(
            select(table.c.step, table.c.shard, table.c.shards, table.c.status, table.c.batches)
            .where(table.c.as_of == as_of)
            .order_by(table.c.step, table.c.shard)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


def test_customers_fall_in_both_shards_by_a_stable_hash() -> None:
    assert {compute_shard(ref, 2) for ref in CUSTOMERS} == {0, 1}
    assert compute_shard("c-4", 2) == 1  # CRC-32 of b"c-4" is odd, on every machine
    assert compute_shard("c-4", 1) == 0


def test_two_workers_write_exactly_the_books_of_one(database: Database) -> None:
    _seed(database)
    expected = _one_worker(database)
    run_eod_through(database, THROUGH, ctx=EodContext(batch_lines=BATCH_LINES, workers=2))
    assert snapshot(database) == expected
    rows = _shard_rows(database, date(2025, 4, 5))
    assert {(step, shard, shards, status) for step, shard, shards, status, _ in rows} == {
        (step, shard, 2, "done") for step in {row[0] for row in rows} for shard in (0, 1)
    }
    bill_batches = {shard: batches for step, shard, _, _, batches in rows if step == "bill"}
    assert bill_batches[0] > 0 and bill_batches[1] > 0
    # Resumed with another number of workers, a closed date stays closed and posts nothing.
    run_eod_through(database, THROUGH, ctx=EodContext(batch_lines=BATCH_LINES, workers=3))
    assert snapshot(database) == expected


@pytest.mark.parametrize(
    ("point", "redone"), [("before_commit", [("due", 4)]), ("after_commit", [])]
)
def test_a_shard_failing_mid_step_resumes_alone_and_ends_as_an_uninterrupted_run(
    database: Database, point: str, redone: list[tuple[str, int]]
) -> None:
    _seed(database)
    expected = _one_worker(database, DUE_DAY)
    failed_batch = 1 * 2 + 1 + 1  # the second batch of shard 1 (see `record_shard_batch`)

    def fail(at: str, step: str, batch_no: int) -> None:
        if (at, step, batch_no) == (point, "due", failed_batch):
            raise InjectedFault(f"{point} due {batch_no}")

    faulty = EodContext(batch_lines=BATCH_LINES, workers=2, shard_runner="thread", on_boundary=fail)
    with pytest.raises(InjectedFault):
        run_eod_through(database, DUE_DAY, ctx=faulty)
    due = [row for row in _shard_rows(database, DUE_DAY) if row[0] == "due"]
    assert [(shard, status) for _, shard, _, status, _ in due] == [(0, "done"), (1, "running")]
    assert (snapshot(database) != expected) is bool(redone)

    resumed: list[tuple[str, int]] = []

    def watch(at: str, step: str, batch_no: int) -> None:
        if at == "after_commit" and step == "due":
            resumed.append((step, batch_no))

    # Run again with one worker: the date keeps its two shards, and only shard 1 of the
    # due step has batches left.
    run_eod_through(
        database,
        DUE_DAY,
        ctx=EodContext(batch_lines=BATCH_LINES, workers=1, on_boundary=watch),
    )
    assert snapshot(database) == expected
    assert resumed == redone
    with database.engine.connect() as conn:
        numbers = conn.execute(
            select(eod_batch_table.c.batch_no).where(
                (eod_batch_table.c.as_of == DUE_DAY) & (eod_batch_table.c.step == "due")
            )
        ).scalars()
        # Shard 0 (six customers) did batches 1, 3, 5; shard 1 (four) 2 and 4.
        assert sorted(numbers) == [1, 2, 3, 4, 5]


def test_a_runner_killed_mid_step_in_two_shards_is_resumed_to_the_same_books(
    database: Database,
) -> None:
    _seed(database)
    expected = _one_worker(database, DUE_DAY)
    database.dispose()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    args = [database.url, DUE_DAY.isoformat(), "due", "3", "before_commit", "2", "2"]
    child = subprocess.run(
        [sys.executable, str(CHILD), *args], env=env, cwd=ROOT, capture_output=True, timeout=240
    )
    assert child.returncode == -9, child.stderr.decode()[-2_000:]
    assert snapshot(database) != expected
    run_eod_through(database, DUE_DAY, ctx=EodContext(batch_lines=BATCH_LINES, workers=2))
    assert snapshot(database) == expected


@pytest.mark.parametrize("runner", ["process", "thread"])
def test_shard_workers_check_the_lease_of_the_term_that_started_them(
    database: Database, runner: str
) -> None:
    """The coordinator hands its term's fence to the shard workers: once another node has
    taken end of day over, a shard started under the old epoch writes nothing."""
    if database.backend == "sqlite":
        pytest.skip("on SQLite the shards run in the coordinator's own thread")
    _seed(database)
    node_a, node_b = LeaseStore(database, "node-a", 60.0), LeaseStore(database, "node-b", 60.0)
    assert node_a.try_acquire("eod") == 1
    ctx = EodContext(batch_lines=BATCH_LINES, workers=2, shard_runner=runner)
    with fence_this_thread(node_a.fence("eod", 1)):
        run_eod_through(database, OPENED + timedelta(days=3), ctx=ctx)  # the lease holds
    before = snapshot(database)

    node_a.release("eod", 1)
    assert node_b.try_acquire("eod") == 2
    tasks = [ShardTask(DUE_DAY, "due", shard, 2, (1, 2)) for shard in (0, 1)]
    done: list[ShardTask] = []
    with (
        ShardPool(database, ctx) as pool,
        fence_this_thread(node_a.fence("eod", 1)),
        pytest.raises((LeaseLost, ShardFailedError), match="no longer held"),
    ):
        pool.run(tasks, done.append)
    assert done == []
    assert snapshot(database) == before
    assert _shard_rows(database, DUE_DAY) == []
