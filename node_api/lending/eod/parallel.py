"""End of day in parallel: each step's shards (see `shards`) run by several workers.

The coordinator (`run_sharded_step`) lists the step's candidate lines once, splits them
by shard and hands each unfinished shard to a worker; a worker runs its shard's lines in
batches exactly as a one-worker run does (lock the lines, compute, write, checkpoint in
the same transaction), except that each batch locks its shard's `eod_shard` row instead
of the step's, so shards never wait for one another's checkpoints. Only when every shard
of the step is done does the coordinator mark the step done and go on to the next one:
a step reads what the previous one wrote for every line, and anything of the whole
date (the step's `eod_step` row, the run's `eod_run` row, the summary) happens once,
after all shards.

Workers (`EodContext.shard_runner`): on PostgreSQL, separate processes (the default:
each a spawned interpreter with its own connection, so the steps' Python runs on every
core) or threads (each with its own connection; the GIL lets one compute at a time, the
others wait on the database); on SQLite, which has one writer, the shards run one after
another in the caller's thread. A shard that fails (or a worker that dies) leaves the
others to finish; the step stays open and the error is raised once they have, so a run
started again redoes only the shards not done, from their last committed batch.

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
from time import perf_counter

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from node_api.kernel.db import Database, WriteFence, fence_this_thread, fetch_thread_fence
from node_api.ledger.sql import begin_write
from node_api.lending.eod import checkpoint
from node_api.lending.eod.context import EodContext, new_eod_caches
from node_api.lending.eod.progress import ProgressReporter
from node_api.lending.eod.shards import (
    fetch_line_shards,
    fetch_shard_positions,
    finish_shard,
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
    """One shard of a step for a date: its candidate lines after its last committed batch."""

    as_of: date
    step: str
    shard: int
    shards: int
    line_ids: tuple[int, ...]


def chunks(items: Sequence[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def run_shard(database: Database, ctx: EodContext, task: ShardTask) -> int:
    """Run the shard's lines batch by batch, then mark it done; the lines it was given."""
    step = STEPS_BY_NAME[task.step]
    with database.engine.connect() as conn:
        for chunk in chunks(task.line_ids, ctx.batch_lines):
            _run_batch_retrying(conn, ctx, task, step, chunk)
        with conn.begin():
            begin_write(conn)
            finish_shard(conn, task.as_of, task.step, task.shard)
    return len(task.line_ids)


def _run_batch_retrying(
    conn: Connection, ctx: EodContext, task: ShardTask, step: Step, chunk: list[int]
) -> None:
    for attempt in range(1, BATCH_ATTEMPTS + 1):
        try:
            _run_shard_batch(conn, ctx, task, step, chunk)
            return
        except DBAPIError as error:
            sqlstate = getattr(error.orig, "sqlstate", None)
            if attempt == BATCH_ATTEMPTS or sqlstate not in RETRIED_SQLSTATES:
                raise
            # Account ids remembered inside the rolled-back transaction may not exist.
            ctx.caches = new_eod_caches()
            log.warning(
                "eod batch retried",
                extra={"step": task.step, "shard": task.shard, "sqlstate": sqlstate},
            )


def _run_shard_batch(
    conn: Connection, ctx: EodContext, task: ShardTask, step: Step, chunk: list[int]
) -> BatchResult | None:
    """One batch of a shard in one transaction, with its checkpoint; None when a runner
    already did these lines."""
    with conn.begin():
        begin_write(conn)
        position = lock_shard(conn, task.as_of, step.name, task.shard)
        todo = [line_id for line_id in chunk if line_id > position.last_line_id]
        if position.done or not todo:
            return None
        result = step.run_batch(conn, ctx, task.as_of, todo)
        batch_no = record_shard_batch(
            conn, task.as_of, step.name, task.shard, task.shards, position, todo[-1], result
        )
        if ctx.on_boundary is not None:
            ctx.on_boundary("before_commit", step.name, batch_no)
    if ctx.on_boundary is not None:
        ctx.on_boundary("after_commit", step.name, batch_no)
    return result


_process_state: tuple[Database, EodContext] | None = None


def _init_process(url: str, batch_lines: int) -> None:
    global _process_state
    _process_state = (Database(url, pool_size=1), EodContext(batch_lines=batch_lines))


def _run_in_process(task: ShardTask, fence: WriteFence | None) -> int:
    assert _process_state is not None, "the worker process was not initialized"
    database, ctx = _process_state
    try:
        with _fenced(fence):
            return run_shard(database, ctx, task)
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
        """Run every task; raise the first failure once all have ended."""
        errors: list[BaseException] = []
        if self.sequential or len(tasks) == 1:
            for task in tasks:
                try:
                    run_shard(self._database, self._ctx, task)
                except Exception as error:
                    errors.append(error)
                    continue
                on_done(task)
        else:
            fence = fetch_thread_fence()  # the term's: every shard checks the same lease
            futures: dict[Future[int], ShardTask] = {
                self._get_executor().submit(self._target(), task, fence): task for task in tasks
            }
            for future, task in futures.items():
                failure = future.exception()
                if failure is None:
                    on_done(task)
                else:
                    errors.append(failure)
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

    def _target(self) -> Callable[[ShardTask, WriteFence | None], int]:
        if self._ctx.shard_runner == "process":
            return _run_in_process
        return self._run_in_thread

    def _run_in_thread(self, task: ShardTask, fence: WriteFence | None) -> int:
        ctx = getattr(self._local, "ctx", None)
        if ctx is None:
            ctx = self._local.ctx = replace(self._ctx, caches=new_eod_caches())
        with _fenced(fence):
            return run_shard(self._database, ctx, task)

    def _get_executor(self) -> Executor:
        if self._executor is None:
            workers = self._ctx.workers
            if self._ctx.shard_runner == "process":
                self._executor = ProcessPoolExecutor(
                    max_workers=workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_init_process,
                    initargs=(self._database.url, self._ctx.batch_lines),
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
    """Run a step's unfinished shards (module docstring); mark the step done after all."""
    started = perf_counter()
    with database.engine.connect() as conn, conn.begin():
        done_before = checkpoint.fetch_position(conn, as_of, step.name)
        positions = fetch_shard_positions(conn, as_of, step.name)
        todo = {} if done_before.done else {k: p for k, p in positions.items() if not p.done}
        after = min((p.last_line_id for p in todo.values()), default=0)
        candidates = step.list_candidates(conn, ctx, as_of, after) if todo else []
        shard_of = fetch_line_shards(conn, candidates, len(positions)) if candidates else {}
    tasks = [
        ShardTask(
            as_of, step.name, shard, len(positions),
            tuple(i for i in candidates if shard_of.get(i) == shard and i > p.last_line_id),
        )
        for shard, p in sorted(todo.items())
    ]  # fmt: skip
    reporter.start_step(
        as_of.isoformat(),
        step.name,
        done_before.lines + sum(len(t.line_ids) for t in tasks),
        done_before.lines,
    )
    pool.run(
        [task for task in tasks if task.line_ids],
        lambda task: reporter.advance(step.name, len(task.line_ids)),
    )
    with database.engine.connect() as conn, conn.begin():
        begin_write(conn)
        for task in tasks:
            if not task.line_ids:
                finish_shard(conn, as_of, step.name, task.shard)
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
