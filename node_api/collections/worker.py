"""The collections loop inside `creditnet up`: send due notifications, compensate the
guaranteed lines due, and keep cases and promises current.

Every pass runs the dispatcher. Guarantors compensate the lines at their compensation day
(`compensation.run_due_compensations`), then cases are refreshed and promises evaluated
for the node's business date when it moves (after end of day) and every `maintenance_s`
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
from node_api.collections.compensation import CompensationRun, run_due_compensations
from node_api.collections.dispatcher import NotificationDispatcher
from node_api.collections.policy import CollectionsPolicy, load_policy
from node_api.collections.promises import EvaluationSummary, evaluate_promises
from node_api.collections.providers import NOTIFICATIONS_FILE, JsonlProvider
from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from node_api.ledger.business_date import fetch_business_date
from node_api.lending.core.context import LendingCaches, LendingPolicy
from node_api.onboarding.vault_factory import build_vault

log = logging.getLogger("creditnet.collections")


@dataclass(frozen=True, slots=True)
class DailyCollections:
    promises: EvaluationSummary
    cases: RefreshSummary
    compensations: CompensationRun | None = None


def run_daily_collections(
    database: Database,
    as_of: date,
    *,
    policy: CollectionsPolicy | None = None,
    caches: LendingCaches | None = None,
) -> DailyCollections:
    """Compensate the lines due (given the policy and lending caches), evaluate promises,
    then refresh cases (so broken promises reach the strategy), in one transaction."""
    with database.engine.begin() as conn:
        compensations = None
        if policy is not None and caches is not None:
            compensations = run_due_compensations(conn, caches, policy, as_of)
        promises = evaluate_promises(conn, as_of)
        cases = refresh_cases(conn, as_of)
    return DailyCollections(promises, cases, compensations)


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
    policy = load_policy(settings)
    caches = LendingCaches(policy=LendingPolicy.from_settings(settings))
    done_for: date | None = None
    done_at = 0.0
    while not stop.is_set():
        try:
            dispatcher.run_once()
            with database.engine.connect() as conn:
                as_of = fetch_business_date(conn)
            stale = time.monotonic() - done_at >= maintenance_s
            if as_of is not None and (as_of != done_for or stale):
                moved = as_of != done_for  # compensation days only move with end of day
                run_daily_collections(
                    database,
                    as_of,
                    policy=policy if moved else None,
                    caches=caches if moved else None,
                )
                done_for, done_at = as_of, time.monotonic()
        except Exception:
            log.exception("collections pass failed")
        stop.wait(interval_s)
