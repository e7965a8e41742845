"""End of day inside `creditnet up`: a loop that closes business dates by a policy.

The policy is read from the environment (`CREDITNET_EOD_<NAME>`):
- `POLICY=manual` (default): never closes a date by itself; run `creditnet eod`.
- `POLICY=calendar`: closes every business date before today's calendar date in
  `TIMEZONE` (default Asia/Shanghai), once the local time is past `CUTOFF` (default
  00:30): at 00:30 on the 5th it closes the 4th and any earlier open date, in order.
- `POLICY=interval`: closes the current business date every `INTERVAL_S` seconds
  (accelerated time for demos and soak tests).
`WORKERS` (default 1) runs each date in that many shards at once (see `parallel`);
`SHARDS` (default 0: as many as `WORKERS`) makes a date's shard count larger, so that
other nodes' helpers find shards to run. `CLAIM_TTL_S` (default 60) is how long a
shard's claim lasts unless a batch renews it (`claims`). On PostgreSQL every node also
runs a helper (`helper`, `run_eod_helper`; `HELPER=false` turns it off) that runs open
shards of the step in progress, looking every `HELPER_POLL_S` seconds (default 2).
The loop wakes every `POLL_S` seconds (default 30) and stops within that time of the stop
event. Nothing happens before the node's business date is first set. The wall clock is
read here, in the runtime, never in the books: the books only see the dates it closes.
A failed run is logged and retried at the next wake-up (runs are resumable).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from node_api.kernel.errors import CreditNetError
from node_api.ledger.business_date import fetch_business_date
from node_api.lending.core.context import LendingPolicy
from node_api.lending.eod.checkpoint import fetch_unfinished_run
from node_api.lending.eod.context import (
    DEFAULT_BATCH_LINES,
    DEFAULT_CLAIM_TTL_S,
    MAX_WORKERS,
    EodContext,
    new_eod_caches,
)
from node_api.lending.eod.helper import run_shard_helper
from node_api.lending.eod.runner import run_eod_through
from node_api.lending.eod.summary import EodSummary

log = logging.getLogger("creditnet.eod")


class EodPolicy(StrEnum):
    MANUAL = "manual"
    CALENDAR = "calendar"
    INTERVAL = "interval"


class EodSchedule(BaseSettings):
    """The scheduler's policy (module docstring)."""

    model_config = SettingsConfigDict(env_prefix="CREDITNET_EOD_", extra="ignore")

    policy: EodPolicy = EodPolicy.MANUAL
    timezone: str = "Asia/Shanghai"
    cutoff: time = time(0, 30)
    interval_s: float = Field(default=60.0, gt=0)
    poll_s: float = Field(default=30.0, gt=0)
    batch_lines: int = Field(default=DEFAULT_BATCH_LINES, ge=1, le=100_000)
    workers: int = Field(default=1, ge=1, le=MAX_WORKERS)
    shards: int = Field(default=0, ge=0, le=MAX_WORKERS)
    claim_ttl_s: float = Field(default=DEFAULT_CLAIM_TTL_S, gt=0, le=3_600)
    helper: bool = True
    helper_poll_s: float = Field(default=2.0, gt=0, le=600)

    def context(self, node: str, lending: LendingPolicy | None = None) -> EodContext:
        """The end-of-day context of this node (`node`: its name in the shards' claims;
        `lending`: its lending policy, whose back-dating window the funding step reads)."""
        return EodContext(
            caches=new_eod_caches(lending),
            batch_lines=self.batch_lines,
            workers=self.workers,
            shards=self.shards,
            node=node,
            claim_ttl_s=self.claim_ttl_s,
        )


def get_calendar_date(now: datetime, schedule: EodSchedule) -> date:
    """The calendar date at wall-clock time `now` in the schedule's time zone (the edges'
    "server date" for the business-date guard)."""
    return now.astimezone(ZoneInfo(schedule.timezone)).date()


def get_calendar_target(now: datetime, schedule: EodSchedule) -> date:
    """The last business date the calendar policy closes at wall-clock time `now`."""
    local = now.astimezone(ZoneInfo(schedule.timezone))
    days_back = 1 if local.time() >= schedule.cutoff else 2
    return local.date() - timedelta(days=days_back)


def run_scheduled_once(
    database: Database, schedule: EodSchedule, ctx: EodContext, now: datetime, last_run: datetime
) -> list[EodSummary]:
    """What the policy closes at `now` (the interval policy counts from `last_run`).

    Both policies first close any earlier date left open (a crashed run, or a day an
    operator skipped by moving the business date forward)."""
    with database.engine.connect() as conn:
        business_date = fetch_business_date(conn)
        unfinished = fetch_unfinished_run(conn)
    if business_date is None or schedule.policy is EodPolicy.MANUAL:
        return []
    if schedule.policy is EodPolicy.INTERVAL:
        if (now - last_run).total_seconds() < schedule.interval_s:
            return []
        return run_eod_through(database, business_date, ctx=ctx)
    target = get_calendar_target(now, schedule)
    first_open = business_date if unfinished is None else min(unfinished, business_date)
    if first_open > target:
        return []
    return run_eod_through(database, target, ctx=ctx)


def run_eod_scheduler(
    stop_event: threading.Event,
    settings: Settings,
    database: Database,
    *,
    schedule: EodSchedule | None = None,
    clock: Callable[[], datetime] | None = None,
    on_closed: Callable[[EodSummary], None] | None = None,
    node: str = "",
) -> None:
    """Close business dates by the configured policy until `stop_event` is set;
    `on_closed` sees each closed date's summary (the runtime's metrics); `node` names
    this node in the shards' claims."""
    policy = schedule or EodSchedule()
    now_of = clock or (lambda: datetime.now(UTC))
    ctx = policy.context(node, LendingPolicy.from_settings(settings))
    last_run = now_of()
    log.info("eod scheduler started", extra={"policy": policy.policy.value, "env": settings.env})
    while not stop_event.wait(policy.poll_s):
        now = now_of()
        try:
            summaries = run_scheduled_once(database, policy, ctx, now, last_run)
        except CreditNetError as error:
            log.error("eod run failed", extra={"code": error.code, "detail": error.detail})
            continue
        except Exception:
            log.exception("eod run crashed")
            continue
        if summaries:
            last_run = now
        for summary in summaries:
            if on_closed is not None:
                on_closed(summary)
            log.info(
                "eod closed",
                extra={
                    "as_of": summary.as_of.isoformat(),
                    "lines": summary.lines,
                    "postings": summary.postings,
                    "elapsed_s": round(summary.elapsed_s, 3),
                },
            )


def run_eod_helper(
    stop_event: threading.Event,
    database: Database,
    *,
    node: str,
    schedule: EodSchedule | None = None,
    lending: LendingPolicy | None = None,
) -> None:
    """This node's shard helper (`helper`) until `stop_event` is set: on PostgreSQL unless
    `CREDITNET_EOD_HELPER=false`; returns at once otherwise. `lending` is the node's
    lending policy (as the scheduler's)."""
    policy = schedule or EodSchedule()
    if database.backend != "postgresql" or not policy.helper:
        return
    run_shard_helper(stop_event, database, policy.context(node, lending), policy.helper_poll_s)
