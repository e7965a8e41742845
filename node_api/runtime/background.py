"""Background workers that run inside `creditnet up`: the oracle relayer and indexer,
the end-of-day scheduler, the daily settlement close and collections (notifications to
the contact provider, cases and promises).

Each runs in its own thread until `stop()`; a crashed loop logs and the others go on.
Every worker runs under its lease (`runtime/leadership.py`), so any number of nodes can
serve one PostgreSQL database while each worker runs on exactly one of them; the
relayers' and the event publisher's writes are fenced by the lease's epoch. End of day's
shard helper runs on every node without a lease: its writes are fenced by each shard's
claim (`node_api/lending/eod/helper.py`). With
`CREDITNET_EVENTS_URL` set, the event publisher (`node_api/events/`) runs as one more.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from eth_account.signers.local import LocalAccount
from prometheus_client import Counter, Histogram

from node_api.kernel.config import Settings
from node_api.kernel.db import Database, fence_this_thread
from node_api.lending.eod.summary import EodSummary
from node_api.runtime.leadership import (
    LeaseTiming,
    TermRunner,
    fenced_step,
    get_node_id,
    run_under_lease,
)
from oracles.leases import LeaseStore
from oracles.relay_kinds import RelayAccount
from oracles.workers import (
    OracleContext,
    build_indexer,
    build_relayer,
    run_step_loop,
)

if TYPE_CHECKING:
    from node_api.runtime.boot import ChainRuntime

log = logging.getLogger("creditnet.workers")


@dataclass
class BackgroundWorkers:
    """The worker threads of a node, sharing one stop event."""

    stop_event: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def spawn(self, name: str, loop: Callable[[threading.Event], None]) -> None:
        def run() -> None:
            try:
                loop(self.stop_event)
            except Exception:
                log.exception("worker crashed", extra={"worker": name})

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def spawn_leased(
        self, name: str, leases: LeaseStore, timing: LeaseTiming, run_term: TermRunner
    ) -> None:
        """Run `name` on this node whenever it holds the worker's lease."""
        self.spawn(name, lambda stop: run_under_lease(name, leases, run_term, stop, timing))

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop every loop after its current step; leases are released on the way out."""
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout_s)


EOD_STEP_SECONDS = Histogram(
    "creditnet_eod_step_duration_seconds",
    "Duration of each end-of-day step of the dates the scheduler closed",
    ["step"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0),
)
EOD_DATES_CLOSED = Counter(
    "creditnet_eod_dates_closed", "Business dates the end-of-day scheduler closed"
)


def observe_eod(summary: EodSummary) -> None:
    """Record a closed date's step durations (served at /metrics)."""
    if summary.already_done:
        return
    for step in summary.steps:
        EOD_STEP_SECONDS.labels(step.name).observe(step.elapsed_s)
    EOD_DATES_CLOSED.inc()


def oracle_context(settings: Settings, database: Database, chain: ChainRuntime) -> OracleContext:
    return OracleContext.from_settings(
        settings, database, chain.rpc_url, chain.manifest, chain.compiled
    )


def start_background_workers(
    settings: Settings, database: Database, chain: ChainRuntime
) -> BackgroundWorkers:
    from node_api.collections.worker import run_collections_worker
    from node_api.lending.core.context import LendingPolicy
    from node_api.lending.eod.scheduler import run_eod_helper, run_eod_scheduler
    from node_api.runtime.settlement_scheduler import run_settlement_scheduler

    node = _LeasedWorkers.open(settings, database)
    _spawn_oracles(node, settings, database, chain, relay=True, index=True)
    node.leased_and_fenced(
        "eod",
        lambda _epoch, term_stop: run_eod_scheduler(
            term_stop, settings, database, on_closed=observe_eod, node=node.leases.holder
        ),
    )
    # End of day's shards run on every node, under per-shard claims (no lease).
    node.workers.spawn(
        "eod-helper",
        lambda stop: run_eod_helper(
            stop, database, node=node.leases.holder, lending=LendingPolicy.from_settings(settings)
        ),
    )
    node.leased_and_fenced(
        "settlement",
        lambda _epoch, term_stop: run_settlement_scheduler(term_stop, settings, database, chain),
    )
    node.leased_and_fenced(
        "collections",
        lambda _epoch, term_stop: run_collections_worker(
            term_stop, settings, database, clock=lambda: datetime.now(UTC)
        ),
    )
    if settings.events_url:
        node.leased("events", _events_term(settings, database, node.leases))
    log.info("background workers started", extra={"node": node.leases.holder})
    return node.workers


def start_oracle_workers(
    settings: Settings, database: Database, chain: ChainRuntime, *, relay: bool, index: bool
) -> BackgroundWorkers:
    """Only the relayers (`relay`) and/or the indexer (`index`), under the same leases as
    a node's: `creditnet relayer` and `creditnet indexer` run safely beside nodes serving
    the same database (whoever holds a worker's lease runs it; the others wait)."""
    node = _LeasedWorkers.open(settings, database)
    _spawn_oracles(node, settings, database, chain, relay=relay, index=index)
    log.info("oracle workers started", extra={"node": node.leases.holder})
    return node.workers


@dataclass(frozen=True)
class _LeasedWorkers:
    """A process's worker threads and the lease store they take their terms from."""

    workers: BackgroundWorkers
    leases: LeaseStore
    timing: LeaseTiming

    @classmethod
    def open(cls, settings: Settings, database: Database) -> _LeasedWorkers:
        leases = LeaseStore(database, get_node_id(settings), settings.lease_ttl_s)
        return cls(BackgroundWorkers(), leases, LeaseTiming.from_settings(settings))

    def leased(self, name: str, run_term: TermRunner) -> None:
        self.workers.spawn_leased(name, self.leases, self.timing, run_term)

    def leased_and_fenced(self, name: str, run_term: TermRunner) -> None:
        self.leased(name, _fenced_term(name, self.leases, run_term))


def _spawn_oracles(
    node: _LeasedWorkers,
    settings: Settings,
    database: Database,
    chain: ChainRuntime,
    *,
    relay: bool,
    index: bool,
) -> None:
    from node_api.runtime.settlement_wiring import load_lender_treasury

    context = oracle_context(settings, database, chain)
    if relay:
        node.leased("relayer", _relayer_term("relayer", context, node.leases, chain.relayer))
        treasury = load_lender_treasury(settings, chain.chain_id)
        if treasury is not None:
            node.leased(
                "treasury-relayer",
                _relayer_term(
                    "treasury-relayer", context, node.leases, treasury, RelayAccount.TREASURY
                ),
            )
    if index:
        node.leased_and_fenced(
            "indexer",
            lambda _epoch, term_stop: run_step_loop(
                "indexer",
                fenced_step("indexer", build_indexer(context).step, term_stop),
                term_stop,
                idle_s=0.5,
            ),
        )


def _relayer_term(
    name: str,
    context: OracleContext,
    leases: LeaseStore,
    account: LocalAccount,
    role: RelayAccount = RelayAccount.RELAYER,
) -> TermRunner:
    """A term of a relayer: a fresh one (nonces counted again from the database and the
    chain), every write fenced by the term's epoch."""

    def run(epoch: int, term_stop: threading.Event) -> None:
        relayer = build_relayer(
            context,
            account,
            role=role,
            fence=lambda conn: leases.check_fence(conn, name, epoch),
        )
        try:
            run_step_loop(name, fenced_step(name, relayer.step, term_stop), term_stop)
        finally:
            relayer.sender.rpc.close()

    return run


def _fenced_term(name: str, leases: LeaseStore, run_term: TermRunner) -> TermRunner:
    """A term whose thread runs the lease's fence first in every transaction it begins (the
    relayers and the publisher fence their own writes instead)."""

    def run(epoch: int, term_stop: threading.Event) -> None:
        with fence_this_thread(leases.fence(name, epoch)):
            run_term(epoch, term_stop)

    return run


def _events_term(settings: Settings, database: Database, leases: LeaseStore) -> TermRunner:
    """A term of the event publisher, its cursor writes fenced by the term's epoch."""
    from node_api.events.jetstream import JetStreamSink
    from node_api.events.publisher import EventPublisher

    def run(epoch: int, term_stop: threading.Event) -> None:
        sink = JetStreamSink(
            settings.events_url, settings.events_stream, settings.events_subject_prefix
        )
        publisher = EventPublisher(
            database, sink, fence=lambda conn: leases.check_fence(conn, "events", epoch)
        )
        try:
            run_step_loop("events", fenced_step("events", publisher.step, term_stop), term_stop)
        finally:
            sink.close()

    return run
