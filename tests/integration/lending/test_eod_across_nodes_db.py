"""End of day across nodes (PostgreSQL): the coordinator's workers and another node's
helper share a step's shards through claims, and the books are those of one worker; a
claim whose holder died is taken over once it expires and the shard resumes after its
last committed batch, no batch run twice; a worker whose claim was taken over writes
nothing more."""

from __future__ import annotations

import threading
import time
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from node_api.kernel.db import Database
from node_api.lending.eod import EodContext, run_eod_through
from node_api.lending.eod.claims import ShardClaim, ShardClaimLost, claim_shard
from node_api.lending.eod.helper import fetch_step_in_progress, help_once, run_shard_helper
from node_api.lending.eod.parallel import run_claimed_shard, run_shard_batch
from node_api.lending.eod.scheduler import EodSchedule, run_eod_helper
from node_api.lending.eod.shards import fetch_shard_positions, list_shard_candidates
from node_api.lending.eod.step_due import DUE_STEP
from node_api.lending.eod.tables import eod_batch_table, eod_shard_table
from tests.integration.lending.eod_helpers import cloned, seed_billed_lines, snapshot

pytestmark = pytest.mark.timeout(600)
"""A takeover that never happens would otherwise leave the coordinator waiting forever."""

OPENED = date(2025, 3, 1)
THROUGH = date(2025, 4, 6)
DUE_DAY = date(2025, 3, 25)
"""The bills cut on 5 March are due: the due step has batches in both shards."""
BATCH_LINES = 2
CUSTOMERS = [f"c-{i}" for i in range(10)]


class InjectedFault(Exception):
    pass


class Killed(BaseException):
    """A worker dying on the spot: not an `Exception`, so it gives nothing back."""


@pytest.fixture
def db_backend() -> str:
    """PostgreSQL only: several nodes share one PostgreSQL database (SQLite has one
    writer, and no helper runs on it)."""
    return "postgresql"


@pytest.fixture
def pg(database: Database) -> Database:
    seed_billed_lines(database, OPENED, CUSTOMERS)
    return database


def _one_worker(database: Database, through: date) -> tuple[dict[str, Any], dict[Any, Any]]:
    """The books and the per-step batch totals of a one-worker close of the same data."""
    with cloned(database) as twin:
        run_eod_through(twin, through, ctx=EodContext(batch_lines=BATCH_LINES))
        return snapshot(twin), _batch_totals(twin, through)


def _batch_totals(database: Database, as_of: date) -> dict[str, tuple[int, int, int]]:
    """Lines, postings and amount of every step's committed batches of the date."""
    batches = eod_batch_table
    with database.engine.connect() as conn:
        rows = conn.execute(
            select(
                batches.c.step,
                func.sum(batches.c.lines),
                func.sum(batches.c.postings),
                func.sum(batches.c.amount_fen),
            )
            .where(batches.c.as_of == as_of)
            .group_by(batches.c.step)
        )
        return {str(step): (int(a), int(b), int(c)) for step, a, b, c in rows}


def _due_batch_numbers(database: Database) -> list[int]:
    batches = eod_batch_table
    with database.engine.connect() as conn:
        return sorted(
            conn.execute(
                select(batches.c.batch_no).where(
                    (batches.c.as_of == DUE_DAY) & (batches.c.step == "due")
                )
            ).scalars()
        )


def _open_due_step(database: Database) -> None:
    """Close the days before DUE_DAY in two shards, then open DUE_DAY: its first step is
    done and the due step is in progress with nothing committed (a fault before its
    first batches commit; the failed shards give their claims back)."""
    ctx = EodContext(batch_lines=BATCH_LINES, workers=2, shard_runner="thread")
    run_eod_through(database, DUE_DAY - timedelta(days=1), ctx=ctx)

    def fail(at: str, step: str, _batch_no: int) -> None:
        if (at, step) == ("before_commit", "due"):
            raise InjectedFault("due")

    faulty = EodContext(batch_lines=BATCH_LINES, workers=2, shard_runner="thread", on_boundary=fail)
    with pytest.raises(InjectedFault):
        run_eod_through(database, DUE_DAY, ctx=faulty)
    with database.engine.connect() as conn:
        assert fetch_step_in_progress(conn) == (DUE_DAY, "due")
        positions = fetch_shard_positions(conn, DUE_DAY, "due")
    assert [p.batches for _, p in sorted(positions.items())] == [0, 0]


def _shard_lines(database: Database, claim: ShardClaim) -> tuple[int, ...]:
    with database.engine.connect() as conn:
        position = fetch_shard_positions(conn, claim.as_of, claim.step)[claim.shard]
        listed = list_shard_candidates(
            conn, EodContext(), claim.as_of, DUE_STEP, {claim.shard: position}, claim.shards
        )
    return listed[claim.shard]


def test_a_second_node_runs_shards_of_each_step_and_the_books_are_one_workers(
    pg: Database,
) -> None:
    expected, _ = _one_worker(pg, THROUGH)
    other_node = Database(pg.url, pool_size=2)  # its own engine and connections
    stop = threading.Event()
    helper = threading.Thread(
        target=run_shard_helper,
        args=(stop, other_node, EodContext(batch_lines=BATCH_LINES, node="node-b"), 0.01),
        name="node-b-eod-helper",
    )
    helper.start()
    try:
        ctx = EodContext(
            batch_lines=BATCH_LINES,
            workers=2,
            shards=4,
            node="node-a",  # worker processes (the default), claiming as node-a
            claim_poll_s=0.01,
        )
        run_eod_through(pg, THROUGH, ctx=ctx)
    finally:
        stop.set()
        helper.join(60)
        other_node.dispose()
    assert not helper.is_alive()
    assert snapshot(pg) == expected

    shards = eod_shard_table
    with pg.engine.connect() as conn:
        rows = conn.execute(
            select(shards.c.claim_holder, func.count(), func.sum(shards.c.batches))
            .where(shards.c.status == "done")
            .group_by(shards.c.claim_holder)
        )
        by_holder = {holder: (int(count), int(batches)) for holder, count, batches in rows}
        open_shards = conn.execute(
            select(func.count()).select_from(shards).where(shards.c.status != "done")
        ).scalar_one()
    assert open_shards == 0
    # Shards with no line for a step are claimed and closed too; both holders ran batches.
    assert set(by_holder) <= {"node-a/coordinator", "node-b/helper"}
    assert by_holder["node-a/coordinator"][1] > 0, by_holder
    assert by_holder["node-b/helper"][1] > 0, by_holder


def test_a_dead_workers_claim_is_taken_over_after_it_expires_and_no_batch_runs_twice(
    pg: Database,
) -> None:
    expected, totals = _one_worker(pg, DUE_DAY)
    _open_due_step(pg)

    # A helper of a node that then dies: it claims shard 0 for half a second, commits
    # one batch (which renews the claim) and stops without giving the claim back.
    def die(at: str, step: str, _batch_no: int) -> None:
        if (at, step) == ("after_commit", "due"):
            raise Killed

    with pg.engine.connect() as conn:
        dead = claim_shard(conn, DUE_DAY, "due", "node-dead/helper", 0.5, shard=0)
        assert dead is not None
        dying = EodContext(batch_lines=BATCH_LINES, on_boundary=die, claim_ttl_s=0.5)
        with pytest.raises(Killed):
            run_claimed_shard(conn, dying, dead, _shard_lines(pg, dead))
    assert _due_batch_numbers(pg) == [1]

    committed: list[int] = []

    def watch(at: str, step: str, batch_no: int) -> None:
        if (at, step) == ("after_commit", "due"):
            committed.append(batch_no)

    started = time.monotonic()
    coordinator = EodContext(
        batch_lines=BATCH_LINES,
        workers=2,
        shard_runner="thread",
        on_boundary=watch,
        node="node-a",
        claim_poll_s=0.05,
    )
    run_eod_through(pg, DUE_DAY, ctx=coordinator)

    assert snapshot(pg) == expected
    assert _batch_totals(pg, DUE_DAY) == totals
    # Shard 0 (six customers) did batch 1 before it died, then 3 and 5 under the new
    # claim; shard 1 (four) 2 and 4. Batch 1 was never run again.
    assert sorted(committed) == [2, 3, 4, 5]
    assert _due_batch_numbers(pg) == [1, 2, 3, 4, 5]
    with pg.engine.connect() as conn:
        shard_0 = fetch_shard_positions(conn, DUE_DAY, "due")[0]
    assert (shard_0.done, shard_0.batches) == (True, 3)
    assert (shard_0.claim_holder, shard_0.claim_epoch) == ("node-a/coordinator", dead.epoch + 1)
    # The claim was taken over only once it had expired.
    assert time.monotonic() - started >= 0.3


def test_a_worker_whose_claim_was_taken_over_writes_nothing_more(pg: Database) -> None:
    expected, _ = _one_worker(pg, DUE_DAY)
    _open_due_step(pg)
    ctx = EodContext(batch_lines=BATCH_LINES)

    with pg.engine.connect() as conn_a, pg.engine.connect() as conn_b:
        first = claim_shard(conn_a, DUE_DAY, "due", "node-a/helper", 0.2, shard=0)
        assert first is not None
        lines = _shard_lines(pg, first)
        assert len(lines) > 2 * BATCH_LINES
        assert run_shard_batch(conn_a, ctx, first, DUE_STEP, list(lines[:BATCH_LINES]))
        # Node A stalls past its claim's time; node B takes the shard over.
        assert claim_shard(conn_b, DUE_DAY, "due", "node-b/helper", 60, shard=0) is None
        time.sleep(0.3)
        second = claim_shard(conn_b, DUE_DAY, "due", "node-b/helper", 60, shard=0)
        assert second is not None and second.epoch == first.epoch + 1
        before = snapshot(pg)

        with pytest.raises(ShardClaimLost):
            run_shard_batch(conn_a, ctx, first, DUE_STEP, list(lines[BATCH_LINES:]))
        with pytest.raises(ShardClaimLost):
            run_claimed_shard(conn_a, ctx, first, lines[BATCH_LINES:])
        with pytest.raises(ShardClaimLost):  # nor may it mark the shard done
            run_claimed_shard(conn_a, ctx, first, ())
        assert snapshot(pg) == before
        with pg.engine.connect() as conn:
            shard_0 = fetch_shard_positions(conn, DUE_DAY, "due")[0]
        assert (shard_0.done, shard_0.batches) == (False, 1)
        assert (shard_0.claim_holder, shard_0.claim_epoch) == ("node-b/helper", second.epoch)

        # Node B resumes after the last committed batch and finishes the shard.
        assert run_claimed_shard(conn_b, ctx, second, _shard_lines(pg, second)) is not None
    run_eod_through(pg, DUE_DAY, ctx=EodContext(batch_lines=BATCH_LINES, workers=2))
    assert snapshot(pg) == expected
    assert _due_batch_numbers(pg) == [1, 2, 3, 4, 5]


def test_a_helper_runs_only_open_shards_of_the_step_in_progress(pg: Database) -> None:
    _open_due_step(pg)
    with pg.engine.connect() as conn:
        held = claim_shard(conn, DUE_DAY, "due", "node-x/helper", 600, shard=0)
    assert held is not None
    ctx = EodContext(batch_lines=BATCH_LINES)

    # Shard 0 is held by a live worker: the helper runs shard 1 of the due step, then
    # finds nothing more to do (the later steps wait for the due step to be done).
    assert help_once(pg, ctx, "node-b/helper")
    assert not help_once(pg, ctx, "node-b/helper")
    shards = eod_shard_table
    with pg.engine.connect() as conn:
        rows = conn.execute(
            select(
                shards.c.step, shards.c.shard, shards.c.status, shards.c.batches,
                shards.c.claim_holder,
            ).where((shards.c.as_of == DUE_DAY) & shards.c.step.not_in(["fund", "credit"]))
        ).all()  # fmt: skip
        assert fetch_step_in_progress(conn) == (DUE_DAY, "due")
    by_shard = {
        (step, shard): (status, batches, holder) for step, shard, status, batches, holder in rows
    }
    assert by_shard.pop(("due", 0)) == ("running", 0, "node-x/helper")
    assert by_shard.pop(("due", 1)) == ("done", 2, "node-b/helper")
    assert set(by_shard.values()) == {("running", 0, None)}


def test_the_node_helper_runs_as_configured(pg: Database) -> None:
    """`CREDITNET_EOD_HELPER=false` starts no helper; otherwise it runs the open shards of
    the step in progress as `<node>/helper`, and stops with the node."""
    _open_due_step(pg)
    stop = threading.Event()
    off = threading.Thread(
        target=run_eod_helper,
        args=(stop, pg),
        kwargs={"node": "n", "schedule": EodSchedule(helper=False)},
    )
    off.start()
    off.join(10)
    assert not off.is_alive()

    schedule = EodSchedule(helper=True, helper_poll_s=0.01, batch_lines=BATCH_LINES)
    on = threading.Thread(
        target=run_eod_helper, args=(stop, pg), kwargs={"node": "n", "schedule": schedule}
    )
    on.start()
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            with pg.engine.connect() as conn:
                positions = fetch_shard_positions(conn, DUE_DAY, "due")
            if all(position.done for position in positions.values()):
                break
            time.sleep(0.05)
    finally:
        stop.set()
        on.join(30)
    assert not on.is_alive()
    assert {(p.done, p.claim_holder) for p in positions.values()} == {(True, "n/helper")}
