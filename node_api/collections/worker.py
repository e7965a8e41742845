"""The collections loop inside `creditnet up`: send due notifications, and keep cases and
promises current.

Every pass runs the dispatcher. Cases are refreshed and promises evaluated for the
node's business date when it moves (after end of day) and every `maintenance_s`
seconds in between, so a repayment keeps its promise within minutes. The wall clock comes
from the caller (`clock`, set by the runtime); the books only see business dates.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from node_api.collections.cases import RefreshSummary, refresh_cases
from node_api.collections.dispatcher import NotificationDispatcher
from node_api.collections.policy import load_policy
from node_api.collections.promises import EvaluationSummary, evaluate_promises
from node_api.collections.providers import NOTIFICATIONS_FILE, JsonlProvider
from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from node_api.ledger.business_date import fetch_business_date
from node_api.onboarding.vault_factory import build_vault

log = logging.getLogger("creditnet.collections")


@dataclass(frozen=True, slots=True)
class DailyCollections:
    promises: EvaluationSummary
    cases: RefreshSummary


def run_daily_collections(database: Database, as_of: date) -> DailyCollections:
    """Evaluate promises, then refresh cases (so broken promises reach the strategy), in
    one transaction."""
    with database.engine.begin() as conn:
        promises = evaluate_promises(conn, as_of)
        cases = refresh_cases(conn, as_of)
    return DailyCollections(promises, cases)


def build_dispatcher(
    settings: Settings, database: Database, clock: Callable[[], datetime]
) -> NotificationDispatcher:
    """The node's dispatcher: the embedded JSONL provider in the data folder."""
    return NotificationDispatcher(
        database,
        build_vault(settings),
        JsonlProvider(settings.data_dir / NOTIFICATIONS_FILE),
        load_policy(settings),
        clock=clock,
    )


def run_collections_worker(
    stop: threading.Event,
    settings: Settings,
    database: Database,
    *,
    clock: Callable[[], datetime],
    interval_s: float = 1.0,
    maintenance_s: float = 60.0,
) -> None:
    """Run until `stop` is set (module docstring); a failed pass is logged and retried."""
    dispatcher = build_dispatcher(settings, database, clock)
    done_for: date | None = None
    done_at = 0.0
    while not stop.is_set():
        try:
            dispatcher.run_once()
            with database.engine.connect() as conn:
                as_of = fetch_business_date(conn)
            stale = time.monotonic() - done_at >= maintenance_s
            if as_of is not None and (as_of != done_for or stale):
                run_daily_collections(database, as_of)
                done_for, done_at = as_of, time.monotonic()
        except Exception:
            log.exception("collections pass failed")
        stop.wait(interval_s)
