"""End of day across nodes: a node's helper runs shards of the step in progress.

The node holding the end-of-day lease coordinates every date (`runner`, `parallel`):
it opens the date's run and shards, does what is of the whole date once and moves from
step to step. Every other node sharing its PostgreSQL database (and the coordinator's
own node too) runs a helper loop (`run_shard_helper`, started by `creditnet up` unless
`CREDITNET_EOD_HELPER=false`): every `CREDITNET_EOD_HELPER_POLL_S` seconds it looks for
the step in progress (the earliest date with an open shard, its first step not done:
the steps before it are done, and stay so) and claims an open shard of it (`claims`:
one never claimed, given back or expired, the highest number first, where the
coordinator starts from the lowest), lists that shard's candidate lines as the
coordinator does (`shards.list_shard_candidates`) and runs them (`parallel.
run_claimed_shard`), then looks again at once. It never touches anything of the whole
date, and needs no lease: every batch it writes checks its own shard's claim.

On SQLite (one writer, one node) there is no helper: the coordinator runs its shards
one after another.
"""

from __future__ import annotations

import logging
import threading
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from node_api.kernel.db import Database
from node_api.lending.eod import checkpoint
from node_api.lending.eod.claims import ShardClaimLost, claim_shard, release_claim
from node_api.lending.eod.context import EodContext, new_eod_caches
from node_api.lending.eod.parallel import run_claimed_shard
from node_api.lending.eod.shards import fetch_shard_positions, list_shard_candidates
from node_api.lending.eod.steps import STEPS, STEPS_BY_NAME
from node_api.lending.eod.tables import eod_run_table, eod_shard_table, eod_step_table

log = logging.getLogger("creditnet.eod")


def fetch_step_in_progress(conn: Connection) -> tuple[date, str] | None:
    """The date and step whose shards are being run now, if any (module docstring)."""
    shards, runs = eod_shard_table, eod_run_table
    as_of = conn.execute(
        select(func.min(shards.c.as_of))
        .join(runs, runs.c.as_of == shards.c.as_of)
        .where((shards.c.status == checkpoint.RUNNING) & (runs.c.status != checkpoint.DONE))
    ).scalar_one_or_none()
    if not isinstance(as_of, date):
        return None
    steps = eod_step_table
    done = {
        str(step)
        for step, status in conn.execute(
            select(steps.c.step, steps.c.status).where(steps.c.as_of == as_of)
        )
        if status == checkpoint.DONE
    }
    for step in STEPS:
        if step.name not in done:
            return as_of, step.name
    return None


def help_once(
    database: Database, ctx: EodContext, holder: str, stop: threading.Event | None = None
) -> bool:
    """Claim and run one open shard of the step in progress; whether one was run (to the
    end, or until `stop` was set: its claim is then given back)."""
    with database.engine.connect() as conn:
        with conn.begin():
            current = fetch_step_in_progress(conn)
        if current is None:
            return False
        as_of, name = current
        claim = claim_shard(conn, as_of, name, holder, ctx.claim_ttl_s, highest_first=True)
        if claim is None:
            return False
        try:
            with conn.begin():
                position = fetch_shard_positions(conn, as_of, name)[claim.shard]
                listed = list_shard_candidates(
                    conn, ctx, as_of, STEPS_BY_NAME[name], {claim.shard: position}, claim.shards
                )
        except Exception:
            release_claim(conn, claim)
            raise
        ran = run_claimed_shard(
            conn, ctx, claim, listed[claim.shard], None if stop is None else stop.is_set
        )
    log.info(
        "eod shard run",
        extra={"as_of": as_of.isoformat(), "step": name, "shard": claim.shard, "lines": ran},
    )
    return True


def run_shard_helper(
    stop_event: threading.Event, database: Database, ctx: EodContext, poll_s: float
) -> None:
    """Run shards of the step in progress (`help_once`) until `stop_event` is set, looking
    every `poll_s` seconds when there is none to claim. A failure is logged and the loop
    goes on (the shard's claim was given back: the coordinator, or a helper, resumes it)."""
    holder = ctx.helper_holder
    log.info("eod shard helper started", extra={"holder": holder})
    while not stop_event.wait(poll_s):
        try:
            while not stop_event.is_set() and help_once(database, ctx, holder, stop_event):
                pass
        except ShardClaimLost as lost:
            log.warning("eod shard taken over", extra={"detail": lost.detail})
        except Exception:
            log.exception("eod shard helper failed")
            ctx.caches = new_eod_caches(ctx.caches.policy)
