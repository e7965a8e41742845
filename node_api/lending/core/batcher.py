"""In-process group commit: concurrent requests of one worker share one transaction.

The first request to arrive when nothing is pending starts a short wait (`max_wait_s`)
for others to join; a batch closes at `max_items` or when the wait
ends, and up to `max_in_flight` batches run at once. Requests that arrive while
batches are in their transactions queue for the next one, so under load batches grow
by themselves and the commit cost (one WAL flush) is shared. Each request keeps its own
idempotency key and its own result.

If a batch's transaction fails as a whole (a database error, not a decline: declines
are decided before anything is written), each of its requests is retried alone in its
own transaction, so one bad request fails only itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

Item = TypeVar("Item")
Result = TypeVar("Result")

log = logging.getLogger("creditnet.authorize")


@dataclass
class BatchStats:
    """Counters for the benchmark and the logs."""

    batches: int = 0
    items: int = 0
    fallbacks: int = 0
    largest: int = 0
    db_seconds: float = 0.0
    sizes: dict[int, int] = field(default_factory=dict)


class GroupCommitter(Generic[Item, Result]):
    """Collects items and runs them in batches through `run(conn, items)` in one
    transaction each. `run` must return one result per item, in order."""

    def __init__(
        self,
        engine: AsyncEngine,
        run: Callable[[Connection, list[Item]], list[Result]],
        *,
        max_items: int = 50,
        max_wait_s: float = 0.005,
        max_in_flight: int = 1,
    ) -> None:
        self._engine = engine
        self._run = run
        self._max_items = max_items
        self._max_wait_s = max_wait_s
        self._max_in_flight = max_in_flight
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._in_flight = 0
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.stats = BatchStats()

    async def submit(self, item: Item) -> Result:
        """Queue one item and wait for its result (or its own exception)."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        self._schedule()
        return await future

    def _schedule(self) -> None:
        """Start a batch now if one is full, else make sure the wait timer runs.

        A batch closes when it is full or when the oldest pending item has waited
        `max_wait_s`; a batch that finishes does not start the next one at once, so the
        requests its answers set free can join the next batch instead of trailing it.
        """
        if len(self._pending) >= self._max_items and self._in_flight < self._max_in_flight:
            self._dispatch()
        elif self._pending and self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self._max_wait_s, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self._in_flight < self._max_in_flight:
            self._dispatch()

    def _dispatch(self) -> None:
        """Start batches while there is pending work and room in flight."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._pending and self._in_flight < self._max_in_flight:
            batch = self._pending[: self._max_items]
            del self._pending[: self._max_items]
            self._in_flight += 1
            task = asyncio.get_running_loop().create_task(self._execute(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _execute(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        try:
            await self._run_batch(batch)
        finally:
            self._in_flight -= 1
            self._schedule()

    async def _run_batch(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        items = [item for item, _ in batch]
        started = time.perf_counter()
        try:
            async with self._engine.begin() as conn:
                results = await conn.run_sync(self._run, items)
        except Exception as error:
            if len(batch) == 1:
                if not batch[0][1].done():
                    batch[0][1].set_exception(error)
                return
            log.warning("batch failed; retrying its items one by one", extra={"items": len(batch)})
            self.stats.fallbacks += 1
            for entry in batch:
                await self._run_batch([entry])
            return
        self._count(len(batch), time.perf_counter() - started)
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    def _count(self, size: int, seconds: float) -> None:
        stats = self.stats
        stats.batches += 1
        stats.items += size
        stats.largest = max(stats.largest, size)
        stats.db_seconds += seconds
        stats.sizes[size] = stats.sizes.get(size, 0) + 1
