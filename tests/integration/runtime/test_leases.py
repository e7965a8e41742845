"""Worker leases: one holder at a time, a new epoch at every change of holder, writes of a
former holder refused by the fence, and a stopped node's workers taken over at once."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from node_api.events.publisher import EventPublisher
from node_api.kernel.db import Database, fence_this_thread
from node_api.runtime.leadership import LeaseTiming, run_under_lease
from oracles.event_store import BlockRef, EventStore
from oracles.leases import LeaseLost, LeaseStore
from oracles.relay_store import Intent, RelayStore
from oracles.scaleout_tables import ATTEMPT_TABLE, LEASE_TABLE
from oracles.tables import SUBMISSION_TABLE
from oracles.tx_sender import FeeQuote, SignedTx
from tests.integration.runtime.test_event_stream import ListSink, _seed
from tests.unit.oracles.oracle_helpers import enqueue_all, fetch_outbox, make_opening

TTL_S = 10.0


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 5, 9, 0)

    def __call__(self) -> datetime:
        return self.now


def _stores(database: Database, clock: Clock) -> tuple[LeaseStore, LeaseStore]:
    return (
        LeaseStore(database, "node-a", TTL_S, clock=clock),
        LeaseStore(database, "node-b", TTL_S, clock=clock),
    )


def test_one_holder_at_a_time_and_a_new_epoch_when_an_expired_lease_is_taken(
    database: Database,
) -> None:
    clock = Clock()
    node_a, node_b = _stores(database, clock)
    assert node_a.try_acquire("relayer") == 1
    assert node_b.try_acquire("relayer") is None
    clock.now += timedelta(seconds=TTL_S - 1)
    assert node_a.renew("relayer", 1)
    assert node_a.try_acquire("relayer") == 1, "the holder renews under the same epoch"
    clock.now += timedelta(seconds=TTL_S - 1)
    assert node_b.try_acquire("relayer") is None, "a renewed lease is not expired"

    clock.now += timedelta(seconds=2)
    assert node_b.try_acquire("relayer") == 2
    assert not node_a.renew("relayer", 1)
    assert node_a.try_acquire("relayer") is None
    holder = node_b.fetch("relayer")
    assert holder is not None and (holder.holder, holder.epoch) == ("node-b", 2)


def test_a_released_lease_is_taken_at_once(database: Database) -> None:
    clock = Clock()
    node_a, node_b = _stores(database, clock)
    assert node_a.try_acquire("eod") == 1
    node_a.release("eod", 1)
    assert node_b.try_acquire("eod") == 2
    node_a.release("eod", 1)  # a stale release changes nothing
    assert node_a.try_acquire("eod") is None


def test_the_fence_refuses_the_relayers_writes_after_a_takeover(database: Database) -> None:
    clock = Clock()
    node_a, node_b = _stores(database, clock)
    assert node_a.try_acquire("relayer") == 1
    store = RelayStore(
        database, "0x" + "aa" * 20, fence=lambda conn: node_a.check_fence(conn, "relayer", 1)
    )
    enqueue_all(database, [make_opening(0), make_opening(1)])
    first, second = (item.id for item in fetch_outbox(database))
    assert first is not None and second is not None
    fees = FeeQuote(3 * 10**9, 10**9)
    store.record_intents(
        [Intent("agreement_open", SignedTx(0, "0x" + "01" * 32, "0x02"), [first])], fees, clock()
    )
    clock.now += timedelta(seconds=TTL_S + 1)
    assert node_b.try_acquire("relayer") == 2

    with pytest.raises(LeaseLost):
        store.record_intents(
            [Intent("agreement_open", SignedTx(1, "0x" + "03" * 32, "0x04"), [second])],
            fees,
            clock(),
        )
    with database.engine.connect() as conn:
        nonces = conn.execute(sa.select(SUBMISSION_TABLE.c.nonce)).scalars().all()
        attempts = conn.execute(sa.select(sa.func.count()).select_from(ATTEMPT_TABLE)).scalar()
    assert nonces == [0] and attempts == 1
    assert [item.status for item in fetch_outbox(database)] == ["sent", "pending"]


def test_the_fence_refuses_the_publishers_cursor_write_after_a_takeover(
    database: Database,
) -> None:
    _seed(database, batches=5, openings=0)
    clock = Clock()
    node_a, node_b = _stores(database, clock)
    assert node_a.try_acquire("events") == 1
    clock.now += timedelta(seconds=TTL_S + 1)
    assert node_b.try_acquire("events") == 2
    stale = EventPublisher(
        database, ListSink(), fence=lambda conn: node_a.check_fence(conn, "events", 1)
    )
    with pytest.raises(LeaseLost):
        stale.step()
    assert stale.fetch_positions() == {}


def _block(number: int) -> BlockRef:
    return BlockRef(number, f"0x{number:064x}", f"0x{number - 1:064x}")


def test_a_fenced_thread_writes_nothing_after_a_takeover_on_any_connection(
    database: Database,
) -> None:
    """The fence of end of day, settlement, collections and the indexer: every transaction
    the term's thread begins (Core or ORM, nested too) checks the epoch first."""
    clock = Clock()
    node_a, node_b = _stores(database, clock)
    assert node_a.try_acquire("indexer") == 1
    store = EventStore(database)
    with fence_this_thread(lambda conn: node_a.check_fence(conn, "indexer", 1)):
        store.store_range([], [_block(7)], _block(7))
        with database.engine.connect() as outer, database.engine.begin() as inner:
            outer.execute(sa.text("SELECT 1"))  # nested transactions fence without a wait
            inner.execute(sa.text("SELECT 1"))
        clock.now += timedelta(seconds=TTL_S + 1)
        assert node_b.try_acquire("indexer") == 2

        with pytest.raises(LeaseLost):
            store.store_range([], [_block(8)], _block(8))
        with pytest.raises(LeaseLost):
            store.rollback_above(_block(5))
        with pytest.raises(LeaseLost), database.session() as session:
            session.execute(sa.delete(LEASE_TABLE))
    assert store.fetch_checkpoint() == BlockRef(7, _block(7).hash, ""), "nothing written"
    assert node_b.fetch("indexer") is not None, "the session's delete was refused"
    with fence_this_thread(lambda conn: node_b.check_fence(conn, "indexer", 2)):
        store.store_range([], [_block(8)], _block(8))
    assert store.fetch_checkpoint() == BlockRef(8, _block(8).hash, "")


def test_another_thread_is_not_fenced_by_a_workers_term(database: Database) -> None:
    clock = Clock()
    node_a, _node_b = _stores(database, clock)
    refused: list[BaseException] = []

    def other() -> None:
        try:
            EventStore(database).store_range([], [_block(3)], _block(3))
        except BaseException as error:
            refused.append(error)

    with fence_this_thread(lambda conn: node_a.check_fence(conn, "indexer", 9)):
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    assert refused == []
    assert EventStore(database).fetch_checkpoint() == BlockRef(3, _block(3).hash, "")


def test_a_worker_runs_on_one_node_and_moves_when_that_node_stops(database: Database) -> None:
    # A TTL well above the takeover's time on a loaded machine: the assertion below tells
    # a released lease (taken at once) from an expired one (taken after the TTL).
    timing = LeaseTiming(ttl_s=3.0, acquire_every_s=0.05)
    running: list[str] = []
    overlap = threading.Event()

    def worker(node: str) -> object:
        def run(_epoch: int, term_stop: threading.Event) -> None:
            if running:
                overlap.set()
            running.append(node)
            term_stop.wait()
            running.remove(node)

        return run

    stops = {node: threading.Event() for node in ("node-a", "node-b")}
    threads = {
        node: threading.Thread(
            target=run_under_lease,
            args=("eod", LeaseStore(database, node, timing.ttl_s), worker(node), stop, timing),
        )
        for node, stop in stops.items()
    }
    threads["node-a"].start()
    _wait_for(lambda: running == ["node-a"])
    threads["node-b"].start()
    time.sleep(0.5)
    assert running == ["node-a"]

    started = time.monotonic()
    stops["node-a"].set()
    threads["node-a"].join(5)
    _wait_for(lambda: running == ["node-b"])
    assert time.monotonic() - started < timing.ttl_s, "a released lease is taken at once"
    stops["node-b"].set()
    threads["node-b"].join(5)
    assert not overlap.is_set()


def _wait_for(condition: object, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_a_node_whose_lease_was_taken_ends_its_term_and_waits(database: Database) -> None:
    timing = LeaseTiming(ttl_s=0.6, acquire_every_s=0.05)
    terms: list[int] = []
    ended = threading.Event()

    def run(epoch: int, term_stop: threading.Event) -> None:
        terms.append(epoch)
        term_stop.wait()
        ended.set()

    stop = threading.Event()
    node_a = LeaseStore(database, "node-a", timing.ttl_s)
    thread = threading.Thread(target=run_under_lease, args=("indexer", node_a, run, stop, timing))
    thread.start()
    _wait_for(lambda: terms == [1])
    # Another node takes the lease over (as after a pause of node-a longer than the ttl).
    with database.engine.begin() as conn:
        conn.execute(
            sa.update(LEASE_TABLE)
            .where(LEASE_TABLE.c.name == "indexer")
            .values(
                holder="node-b",
                epoch=2,
                expires_at=datetime.now(UTC).replace(tzinfo=None) + timedelta(minutes=5),
            )
        )
    _wait_for(ended.is_set)
    time.sleep(0.3)
    assert terms == [1], "node-a does not start again while node-b holds the lease"
    stop.set()
    thread.join(5)
    holder = node_a.fetch("indexer")
    assert holder is not None and (holder.holder, holder.epoch) == ("node-b", 2)
