"""Background workers that run inside `creditnet up`: the oracle relayer and indexer,
the end-of-day scheduler, the daily settlement close and collections (notifications to
the contact provider, cases and promises).

Each runs in its own thread until `stop()`; a crashed loop logs and the others go on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from prometheus_client import Counter, Histogram

from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from node_api.lending.eod.summary import EodSummary
from oracles.workers import OracleContext, OracleWorkers, start_oracle_workers

if TYPE_CHECKING:
    from node_api.runtime.boot import ChainRuntime

log = logging.getLogger("creditnet.workers")


@dataclass
class BackgroundWorkers:
    """The oracle loops plus scheduler threads sharing one stop event."""

    oracle: OracleWorkers | None = None
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

    def stop(self, timeout_s: float = 10.0) -> None:
        self.stop_event.set()
        if self.oracle is not None:
            self.oracle.stop(timeout_s)
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
    from node_api.lending.eod.scheduler import run_eod_scheduler
    from node_api.runtime.settlement_scheduler import run_settlement_scheduler
    from node_api.runtime.settlement_wiring import load_lender_treasury

    workers = BackgroundWorkers()
    treasury = load_lender_treasury(settings, chain.chain_id)
    workers.oracle = start_oracle_workers(
        oracle_context(settings, database, chain), chain.relayer, treasury_account=treasury
    )
    workers.spawn(
        "eod", lambda stop: run_eod_scheduler(stop, settings, database, on_closed=observe_eod)
    )
    workers.spawn(
        "settlement", lambda stop: run_settlement_scheduler(stop, settings, database, chain)
    )
    workers.spawn(
        "collections",
        lambda stop: run_collections_worker(
            stop, settings, database, clock=lambda: datetime.now(UTC)
        ),
    )
    return workers
