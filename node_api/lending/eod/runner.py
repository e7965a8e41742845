"""Running end of day for a business date, resumably and idempotently.

`run_eod(database, D)` closes business date D:
1. close the day: the business date moves to D + 1, so nothing more is dated D;
2. the steps, in order: the funding partners' shares of the day's uses, customer credit
   applied to what is due, due dates, late fees,
   interest accrual, delinquency (ageing and penalty interest), charge-off,
   classification (five-tier class, non-accrual, provisions), bill cut. Each step lists
   the lines it may concern and works through them in batches of lines, one
   transaction per batch: lock the lines, read their facts with a few set-based
   queries, compute in memory with the pure rules, write every posting batch, bill and
   state row with a handful of statements, and record the batch's checkpoint in the same
   transaction.
A crash at any point loses at most the batch in flight: a re-run skips committed
batches (they are after the step's last checkpointed line) and finished steps. Running
a finished date again posts nothing. Even with its checkpoints lost, a date run again
posts nothing: every step skips what it already did (a bill's outcome or late fee, a
line's bill or charge-off, a posting batch's business key `eod:<date>:<step>:<line or
bill>`, which the ledger also keeps unique).

With several workers (`EodContext.workers`, `CREDITNET_EOD_WORKERS`, `creditnet eod
--workers`), a date that opens then runs each step in shards by customer (`shards`,
`parallel`; `EodContext.shards`, `CREDITNET_EOD_SHARDS`, may make more shards than
workers): the shards of a step run at once, each with its own checkpoint, on this
node's workers and on other nodes' (`claims`, `helper`), and the next step starts when
all are done. The books it writes are the same as one worker's.

Dates run in order: `run_eod_through` closes every date from the first open one. An
operator who moves the business date forward (`move_business_date`) skips days end of
day never closed: each of them gets its run opened then, so the next `run_eod_through`
(the scheduler's, or `creditnet eod`) closes every one of them, in order, before any
later date.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, timedelta
from time import perf_counter

from sqlalchemy.engine import Connection

from node_api.kernel.db import Database
from node_api.kernel.errors import ConflictError
from node_api.ledger.business_date import fetch_business_date, set_business_date
from node_api.ledger.sql import begin_write
from node_api.lending.eod import checkpoint
from node_api.lending.eod.context import EodContext
from node_api.lending.eod.parallel import ShardPool, run_sharded_step
from node_api.lending.eod.progress import NullProgress, ProgressReporter
from node_api.lending.eod.shards import open_shards
from node_api.lending.eod.step import BatchResult, Step
from node_api.lending.eod.steps import STEPS
from node_api.lending.eod.summary import EodSummary, StepSummary

__all__ = ["STEPS", "move_business_date", "run_eod", "run_eod_through"]


def _chunks(items: Sequence[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _close_day(conn: Connection, as_of: date, shards: int) -> tuple[str, int]:
    """Open the run's checkpoints and move the business date past `as_of`; the run's
    status and its shard count."""
    begin_write(conn)
    unfinished = checkpoint.fetch_unfinished_run(conn)
    if unfinished is not None and unfinished < as_of:
        raise ConflictError(
            f"end of day for {unfinished.isoformat()} has not finished; run it first",
            field="as_of",
            code="eod_out_of_order",
        )
    business_date = fetch_business_date(conn)
    if business_date is not None and business_date < as_of:
        raise ConflictError(
            f"the business date is {business_date.isoformat()}; close it first",
            field="as_of",
            code="eod_out_of_order",
        )
    status = checkpoint.open_run(conn, as_of, [step.name for step in STEPS])
    if status != checkpoint.DONE and (business_date is None or business_date <= as_of):
        set_business_date(conn, as_of + timedelta(days=1))
    if status == checkpoint.DONE:
        return status, 1
    return status, open_shards(conn, as_of, [step.name for step in STEPS], shards)


def move_business_date(conn: Connection, as_of: date) -> date | None:
    """Set the first business date, or move it forward (never back), opening an
    end-of-day run for every day from the current business date up to `as_of` so that
    none of them goes unclosed. Returns the previous business date (None the first time).

    The caller has checked `as_of` against the calendar (`check_business_date_ahead`).
    """
    begin_write(conn)
    previous = fetch_business_date(conn)
    set_business_date(conn, as_of)
    if previous is not None:
        names = [step.name for step in STEPS]
        day = previous
        while day < as_of:
            checkpoint.open_run(conn, day, names)
            day += timedelta(days=1)
    return previous


def run_eod(
    database: Database,
    as_of: date,
    *,
    ctx: EodContext | None = None,
    progress: ProgressReporter | None = None,
    pool: ShardPool | None = None,
) -> EodSummary:
    """Close business date `as_of` (see the module docstring); return its summary.

    In one shard, one connection serves the whole date, one transaction per batch of
    lines; in several (`ctx.shard_count` > 1 when the date opened), `parallel` runs each
    step's shards on `pool` (one made for this date when not given)."""
    context = ctx or EodContext()
    reporter = progress or NullProgress()
    started = perf_counter()
    with database.engine.connect() as conn:
        with conn.begin():
            status, shards = _close_day(conn, as_of, context.shard_count)
            positions = checkpoint.fetch_positions(conn, as_of)
        already_done = status == checkpoint.DONE
    if shards > 1:
        own_pool = None if pool is not None else ShardPool(database, context)
        shard_pool = pool or own_pool
        assert shard_pool is not None
        try:
            summaries = [
                run_sharded_step(database, context, as_of, step, shard_pool, reporter)
                for step in STEPS
            ]
        finally:
            if own_pool is not None:
                own_pool.close()
    else:
        with database.engine.connect() as conn:
            summaries = [
                _run_step(conn, context, as_of, step, positions[step.name], reporter)
                for step in STEPS
            ]
    with database.engine.connect() as conn:
        if not already_done:
            with conn.begin():
                begin_write(conn)
                checkpoint.finish_run(conn, as_of)
    return EodSummary(as_of, tuple(summaries), perf_counter() - started, already_done)


def _run_step(
    conn: Connection,
    ctx: EodContext,
    as_of: date,
    step: Step,
    position: checkpoint.StepPosition,
    reporter: ProgressReporter,
) -> StepSummary:
    """Run one step from `position` (as read when the run started; each batch re-reads
    it under the step's lock, so a concurrent runner never makes it redo work)."""
    started = perf_counter()
    with conn.begin():
        candidates = (
            [] if position.done else step.list_candidates(conn, ctx, as_of, position.last_line_id)
        )
        if not candidates and not position.done:
            begin_write(conn)
            checkpoint.finish_step(conn, as_of, step.name)
    reporter.start_step(
        as_of.isoformat(), step.name, position.lines + len(candidates), position.lines
    )
    totals = [position.lines, position.batches, position.postings, position.amount_fen]
    for chunk in _chunks(candidates, ctx.batch_lines):
        result = _run_batch(conn, ctx, as_of, step, chunk)
        if result is not None:
            for index, value in enumerate((result.lines, 1, result.batches, result.amount_fen)):
                totals[index] += value
        reporter.advance(step.name, len(chunk))
    if candidates:
        with conn.begin():
            begin_write(conn)
            checkpoint.finish_step(conn, as_of, step.name)
    lines, batches, postings, amount_fen = totals
    return StepSummary(step.name, lines, batches, postings, amount_fen, perf_counter() - started)


def _run_batch(
    conn: Connection, ctx: EodContext, as_of: date, step: Step, chunk: list[int]
) -> BatchResult | None:
    """One batch of lines in one transaction, with its checkpoint. None when another
    runner already did these lines."""
    with conn.begin():
        begin_write(conn)
        if checkpoint.lock_step(conn, as_of, step.name):
            return None
        position = checkpoint.fetch_position(conn, as_of, step.name)
        todo = [line_id for line_id in chunk if line_id > position.last_line_id]
        if not todo:
            return None
        batch_no = position.batches + 1
        result = step.run_batch(conn, ctx, as_of, todo)
        checkpoint.record_batch(conn, as_of, step.name, batch_no, todo[-1], result)
        if ctx.on_boundary is not None:
            ctx.on_boundary("before_commit", step.name, batch_no)
    if ctx.on_boundary is not None:
        ctx.on_boundary("after_commit", step.name, batch_no)
    return result


def run_eod_through(
    database: Database,
    through: date,
    *,
    ctx: EodContext | None = None,
    progress: ProgressReporter | None = None,
) -> list[EodSummary]:
    """Close every business date from the first open one through `through`, in order.

    The first open date is an unfinished run's date (a run that crashed, or a day an
    operator skipped), else the business date; a node without a business date starts
    at `through`. Dates already closed are not re-run
    (except `through` itself, which then posts nothing).
    """
    with database.engine.connect() as conn:
        start = checkpoint.fetch_unfinished_run(conn) or fetch_business_date(conn) or through
    context = ctx or EodContext()
    summaries = []
    day = min(start, through)
    with ShardPool(database, context) as pool:
        while day <= through:
            summaries.append(run_eod(database, day, ctx=context, progress=progress, pool=pool))
            day += timedelta(days=1)
    return summaries
