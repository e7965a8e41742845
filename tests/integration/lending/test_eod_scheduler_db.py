"""The end-of-day scheduler against a database: manual does nothing, calendar closes the
open dates in order, interval closes one date per interval, and the loop stops."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from node_api.ledger.business_date import fetch_business_date, set_business_date
from node_api.lending.eod import EodContext
from node_api.lending.eod.scheduler import (
    EodPolicy,
    EodSchedule,
    run_eod_scheduler,
    run_scheduled_once,
)

START = date(2025, 3, 1)
# 02:00 on 5 March in Shanghai.
NOW = datetime(2025, 3, 4, 18, 0, tzinfo=UTC)


def _business_date(database: Database) -> date | None:
    with database.engine.connect() as conn:
        return fetch_business_date(conn)


def test_manual_policy_never_moves_the_business_date(database: Database) -> None:
    with database.engine.begin() as conn:
        set_business_date(conn, START)
    ran = run_scheduled_once(database, EodSchedule(), EodContext(), NOW, NOW)
    assert ran == [] and _business_date(database) == START


def test_calendar_policy_closes_every_open_date_before_today(database: Database) -> None:
    with database.engine.begin() as conn:
        set_business_date(conn, START)
    schedule = EodSchedule(policy=EodPolicy.CALENDAR)
    ran = run_scheduled_once(database, schedule, EodContext(), NOW, NOW)
    assert [summary.as_of for summary in ran] == [date(2025, 3, d) for d in (1, 2, 3, 4)]
    assert _business_date(database) == date(2025, 3, 5)
    assert run_scheduled_once(database, schedule, EodContext(), NOW, NOW) == []


def test_nothing_happens_before_the_business_date_is_set(database: Database) -> None:
    schedule = EodSchedule(policy=EodPolicy.CALENDAR)
    assert run_scheduled_once(database, schedule, EodContext(), NOW, NOW) == []


def test_interval_loop_closes_a_date_per_interval_and_stops(database: Database) -> None:
    with database.engine.begin() as conn:
        set_business_date(conn, START)
    ticks = iter(NOW + timedelta(seconds=10 * i) for i in range(1_000))
    stop = threading.Event()
    schedule = EodSchedule(policy=EodPolicy.INTERVAL, interval_s=10, poll_s=0.01)
    worker = threading.Thread(
        target=run_eod_scheduler,
        args=(stop, Settings(), database),
        kwargs={"schedule": schedule, "clock": lambda: next(ticks)},
    )
    worker.start()
    deadline = datetime.now(UTC) + timedelta(seconds=60)
    while (_business_date(database) or START) < date(2025, 3, 4) and datetime.now(UTC) < deadline:
        stop.wait(0.05)
    stop.set()
    worker.join(10)
    assert not worker.is_alive()
    assert (_business_date(database) or START) >= date(2025, 3, 4)
