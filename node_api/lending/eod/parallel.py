"""End of day in parallel: each step's shards (see `shards`) run by several workers, of
this node and of others.

The coordinator (`run_sharded_step`, on the node holding the end-of-day lease) lists the
step's candidate lines once, splits them by shard (`shards.list_shard_candidates`) and
hands each unfinished shard to a worker; a worker first claims its shard (`claims`:
skipped when another node's worker holds it), then runs its lines in batches exactly as
a one-worker run does (lock the lines, compute, write, checkpoint in the same
transaction), except that each batch locks its shard's `eod_shard` row instead of the
step's, so shards never wait for one another's checkpoints, and writes only while the
row still carries its claim (renewed by the batch). Other nodes' helpers (`helper`)
claim shards of the step in progress the same way and list their lines with the same
function. The coordinator then waits for the shards other nodes hold, taking over any
whose claim was given back or expired (from its last committed batch). Only when every
shard of the step is done, whoever ran it, does the coordinator mark the step done and
go on to the next one: a step reads what the previous one wrote for every line, and
anything of the whole date (the step's `eod_step` row, the run's `eod_run` row, the
summary) happens once, after all shards.

Workers (`EodContext.shard_runner`): on PostgreSQL, separate processes (the default:
each a spawned interpreter with its own connection, so the steps' Python runs on every
core) or threads (each with its own connection; the GIL lets one compute at a time, the
others wait on the database); on SQLite, which has one writer, the shards run one after
another in the caller's thread. A shard that fails (or a worker that dies) leaves the
others to finish; the step stays open and the error is raised once they have, so a run
started again redoes only the shards not done, from their last committed batch (a
failed shard's claim is given back; one of a killed coordinator's workers is taken back
at once by the coordinator's next run, which claims under the same holder name, and
one of another node's after it expires).

Two shards' batches share only the node's own accounts: their rows are locked in id
order within each posting call, but a batch posting twice may meet another in the
opposite order, so a batch that PostgreSQL aborts as a deadlock (or a serialization
failure) is run again, up to `BATCH_ATTEMPTS` times.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from datetime import date
from time import perf_counter, sleep

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from node_api.kernel.db import Database, WriteFence, fence_this_thread, fetch_thread_fence
from node_api.kernel.outbox import get_utc_now
from node_api.ledger.sql import begin_write
from node_api.lending.eod import checkpoint
from node_api.lending.eod.claims import (
    ShardClaim,
    ShardClaimLost,
    check_claim,
    claim_shard,
    is_claimable,
    release_claim,
    renewed_expiry,
)
from node_api.lending.eod.context import EodContext, new_eod_caches
from node_api.lending.eod.progress import ProgressReporter
from node_api.lending.eod.shards import (
    fetch_shard_positions,
    finish_shard,
    list_shard_candidates,
    lock_shard,
    record_shard_batch,
)
from node_api.lending.eod.step import BatchResult, Step
from node_api.lending.eod.steps import STEPS_BY_NAME
from node_api.lending.eod.summary import StepSummary

log = logging.getLogger("creditnet.eod")

BATCH_ATTEMPTS = 3
RETRIED_SQLSTATES = frozenset({"40P01", "40001"})
"""PostgreSQL's deadlock_detected and serialization_failure: the batch is run again."""


class ShardFailedError(RuntimeError):
    """A shard failed in a worker process (its error's type and message; the original
    may not survive being sent back between processes)."""


@dataclass(frozen=True, slots=True)
class ShardTask:
    """One shard of a step for a date: its candidate lines after its last committed batch,
    and the claim holder to run it as (empty: the context's coordinator)."""

    as_of: date
    step: str
    shard: int
    shards: int
    line_ids: tuple[int, ...]
    holder: str = ""


def chunks(items: Sequence[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def run_shard(database: Database, ctx: EodContext, task: ShardTask) -> int | None:
    """Claim the task's shard and run its lines (`run_claimed_shard`); None when another
    worker holds the shard (or it is done). Raises `ShardClaimLost` when the shard is taken
    over while it runs."""
    holder = task.holder or ctx.coordinator_holder
    with database.engine.connect() as conn:
        claim = claim_shard(conn, task.as_of, task.step, holder, ctx.claim_ttl_s, shard=task.shard)
        if claim is None:
            return None
        return run_claimed_shard(conn, ctx, claim, task.line_ids)


def run_claimed_shard(
    conn: Connection,
    ctx: EodContext,
    claim: ShardClaim,
    line_ids: Sequence[int],
    should_stop: Callable[[], bool] | None = None,
) -> int | None:
    """Run the claimed shard's lines batch by batch, then mark it done; the lines it was
    given, or None when `should_stop` said to stop between batches (the claim is then
    given back). A batch refused because the shard was taken over raises
    `ShardClaimLost`, having written nothing; any other failure gives the claim back
    (another worker may resume the shard at once) and is raised."""
    step = STEPS_BY_NAME[claim.step]
    try:
        for chunk in chunks(line_ids, ctx.batch_lines):
            if should_stop is not None and should_stop():
                release_claim(conn, claim)
                return None
            _run_batch_retrying(conn, ctx, claim, step, chunk)
        with conn.begin():
            begin_write(conn)
            check_claim(lock_shard(conn, claim.as_of, claim.step, claim.shard), claim)
            finish_shard(conn, claim.as_of, claim.step, claim.shard)
    except ShardClaimLost:
        raise
    except Exception:
        _release_quietly(conn, claim)
        raise
    return len(line_ids)


def _release_quietly(conn: Connection, claim: ShardClaim) -> None:
    try:
        release_claim(conn, claim)
    except Exception:  # the failure being raised matters more; the claim then expires
        log.warning(
            "eod shard claim not released",
            extra={"step": claim.step, "shard": claim.shard, "epoch": claim.epoch},
        )


def _run_batch_retrying(
    conn: Connection, ctx: EodContext, claim: ShardClaim, step: Step, chunk: list[int]
) -> None:
    for attempt in range(1, BATCH_ATTEMPTS + 1):
        try:
            run_shard_batch(conn, ctx, claim, step, chunk)
            return
        except DBAPIError as error:
            sqlstate = getattr(error.orig, "sqlstate", None)
            if attempt == BATCH_ATTEMPTS or sqlstate not in RETRIED_SQLSTATES:
                raise
            # Account ids remembered inside the rolled-back transaction may not exist.
            ctx.caches = new_eod_caches(ctx.caches.policy)
            log.warning(
                "eod batch retried",
                extra={"step": claim.step, "shard": claim.shard, "sqlstate": sqlstate},
            )


def run_shard_batch(
    conn: Connection, ctx: EodContext, claim: ShardClaim, step: Step, chunk: list[int]
) -> BatchResult | None:
    """One batch of a shard in one transaction, with its checkpoint and the renewal of
    its claim; None when a runner already did these lines. Writes nothing unless the
    locked shard row still carries the claim (`ShardClaimLost`)."""
    with conn.begin():
        begin_write(conn)
        position = lock_shard(conn, claim.as_of, step.name, claim.shard)
        check_claim(position, claim)
        todo = [line_id for line_id in chunk if line_id > position.last_line_id]
        if position.done or not todo:
            return None
        result = step.run_batch(conn, ctx, claim.as_of, todo)
        batch_no = record_shard_batch(
            conn, claim.as_of, step.name, claim.shard, claim.shards, position, todo[-1],
            result, renewed_expiry(claim),
        )  # fmt: skip
        if ctx.on_boundary is not None:
            ctx.on_boundary("before_commit", step.name, batch_no)
    if ctx.on_boundary is not None:
        ctx.on_boundary("after_commit", step.name, batch_no)
    return result


def _run_or_skip(database: Database, ctx: EodContext, task: ShardTask) -> int | None:
    """`run_shard`, a shard taken over by another worker counting as not ours (None)."""
    try:
        return run_shard(database, ctx, task)
    except ShardClaimLost:
        log.warning("eod shard taken over", extra={"step": task.step, "shard": task.shard})
        return None


_process_state: tuple[Database, EodContext] | None = None


def _init_process(url: str, batch_lines: int, node: str, claim_ttl_s: float) -> None:
    global _process_state
    _process_state = (
        Database(url, pool_size=1),
        EodContext(batch_lines=batch_lines, node=node, claim_ttl_s=claim_ttl_s),
    )


def _run_in_process(task: ShardTask, fence: WriteFence | None) -> int | None:
    assert _process_state is not None, "the worker process was not initialized"
    database, ctx = _process_state
    try:
        with _fenced(fence):
            return _run_or_skip(database, ctx, task)
    except Exception as error:
        raise ShardFailedError(f"{task.step} shard {task.shard}: {error!r}") from None


def _fenced(fence: WriteFence | None) -> AbstractContextManager[None]:
    """The coordinator's fence around a shard's transactions (none when unfenced)."""
    return nullcontext() if fence is None else fence_this_thread(fence)


def _ready() -> bool:
    return True


class ShardPool:
    """Runs a step's shard tasks (module docstring); workers start on first use and stop
    when the pool is closed."""

    def __init__(self, database: Database, ctx: EodContext) -> None:
        self._database = database
        self._ctx = ctx
        self._executor: Executor | None = None
        self._local = threading.local()

    @property
    def sequential(self) -> bool:
        return self._database.backend == "sqlite" or self._ctx.workers <= 1

    def run(self, tasks: Sequence[ShardTask], on_done: Callable[[ShardTask], None]) -> None:
        """Run every task; `on_done` sees each one this node ran to the end (not those
        another worker held or took over); raise the first failure once all have ended."""
        errors: list[BaseException] = []
        if self.sequential or len(tasks) == 1:
            for task in tasks:
                try:
                    ran = _run_or_skip(self._database, self._ctx, task)
                except Exception as error:
                    errors.append(error)
                    continue
                if ran is not None:
                    on_done(task)
        else:
            fence = fetch_thread_fence()  # the term's: every shard checks the same lease
            futures: dict[Future[int | None], ShardTask] = {
                self._get_executor().submit(self._target(), task, fence): task for task in tasks
            }
            for future, task in futures.items():
                failure = future.exception()
                if failure is not None:
                    errors.append(failure)
                elif future.result() is not None:
                    on_done(task)
        if errors:
            raise errors[0]

    def start(self) -> None:
        """Start every worker now rather than on first use (a worker process takes a
        second or two to start: benchmarks time it apart)."""
        if self.sequential:
            return
        executor = self._get_executor()
        for future in [executor.submit(_ready) for _ in range(self._ctx.workers)]:
            future.result()

    def _target(self) -> Callable[[ShardTask, WriteFence | None], int | None]:
        if self._ctx.shard_runner == "process":
            return _run_in_process
        return self._run_in_thread

    def _run_in_thread(self, task: ShardTask, fence: WriteFence | None) -> int | None:
        ctx = getattr(self._local, "ctx", None)
        if ctx is None:
            ctx = self._local.ctx = replace(
                self._ctx, caches=new_eod_caches(self._ctx.caches.policy)
            )
        with _fenced(fence):
            return _run_or_skip(self._database, ctx, task)

    def _get_executor(self) -> Executor:
        if self._executor is None:
            workers = self._ctx.workers
            if self._ctx.shard_runner == "process":
                self._executor = ProcessPoolExecutor(
                    max_workers=workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_init_process,
                    initargs=(
                        self._database.url,
                        self._ctx.batch_lines,
                        self._ctx.node,
                        self._ctx.claim_ttl_s,
                    ),
                )
            else:
                self._executor = ThreadPoolExecutor(workers, thread_name_prefix="eod-shard")
        return self._executor

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> ShardPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def run_sharded_step(
    database: Database,
    ctx: EodContext,
    as_of: date,
    step: Step,
    pool: ShardPool,
    reporter: ProgressReporter,
) -> StepSummary:
    """Run a step's unfinished shards (module docstring): those this node's workers can
    claim, then, until every shard is done, any whose claim another node gave up or let
    expire; mark the step done after all."""
    started = perf_counter()
    holder = ctx.coordinator_holder
    with database.engine.connect() as conn, conn.begin():
        done_before = checkpoint.fetch_position(conn, as_of, step.name)
        positions = fetch_shard_positions(conn, as_of, step.name)
        todo = {} if done_before.done else {k: p for k, p in positions.items() if not p.done}
        listed = list_shard_candidates(conn, ctx, as_of, step, todo, len(positions))
    tasks = [
        ShardTask(as_of, step.name, shard, len(positions), listed[shard], holder)
        for shard in sorted(todo)
    ]
    reporter.start_step(
        as_of.isoformat(),
        step.name,
        done_before.lines + sum(len(t.line_ids) for t in tasks),
        done_before.lines,
    )

    def advance(task: ShardTask) -> None:
        reporter.advance(step.name, len(task.line_ids))

    pool.run(tasks, advance)
    if todo:
        _await_shards(database, ctx, as_of, step, len(positions), pool, advance)
    with database.engine.connect() as conn, conn.begin():
        begin_write(conn)
        if not done_before.done:
            checkpoint.finish_step(conn, as_of, step.name)
        position = checkpoint.fetch_position(conn, as_of, step.name)
    return StepSummary(
        step.name,
        position.lines,
        position.batches,
        position.postings,
        position.amount_fen,
        perf_counter() - started,
    )


def _await_shards(
    database: Database,
    ctx: EodContext,
    as_of: date,
    step: Step,
    shards: int,
    pool: ShardPool,
    on_done: Callable[[ShardTask], None],
) -> None:
    """Until every shard of the step is done: run those whose claim is free (given back,
    or expired: their holder died), from their last committed batch, with their
    candidates listed again; otherwise wait `claim_poll_s` for the other nodes."""
    holder = ctx.coordinator_holder
    ran: list[ShardTask] = []

    def done(task: ShardTask) -> None:
        ran.append(task)
        on_done(task)

    while True:
        with database.engine.connect() as conn, conn.begin():
            positions = fetch_shard_positions(conn, as_of, step.name)
            if all(position.done for position in positions.values()):
                return
            now = get_utc_now()
            free = {k: p for k, p in positions.items() if is_claimable(p, holder, now)}
            listed = list_shard_candidates(conn, ctx, as_of, step, free, shards)
        ran_before = len(ran)
        if free:
            tasks = [
                ShardTask(as_of, step.name, shard, shards, listed[shard], holder)
                for shard in sorted(free)
            ]
            pool.run(tasks, done)
        if len(ran) == ran_before:
            sleep(ctx.claim_poll_s)
