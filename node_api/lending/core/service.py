"""The authorization service of one worker: its caches and its group committer.

The committer belongs to the event loop it was created in (futures and the async
engine's connections are bound to a loop), so a new loop needs a new service (the HTTP
layer keeps one per loop). Responses are rendered by the `render` the caller injects.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy.engine import Connection

from node_api.idempotency import Renderer, StoredResponse
from node_api.kernel.db import Database
from node_api.lending.core.batch import AuthorizedUse, run_use_batch
from node_api.lending.core.batcher import GroupCommitter
from node_api.lending.core.context import LendingCaches
from node_api.lending.core.decide import UseRequest

MAX_BATCH_ITEMS = 100
"""The most requests one batch takes. A batch's fixed costs (its transaction, two calls,
each statement's start in the database functions) are shared by its requests: against
50, 100 cost 0-18 % less node CPU and 3-15 % less PostgreSQL CPU a request in three
interleaved pairs on 2026-12-06 (in-process, 128 clients: 1,791-2,061/s at 50,
1,976-2,163/s at 100). Below the peak batches are smaller than either, so the latency
at a fixed rate does not change; at the peak a full batch holds its lines about twice as
long (45 against 24 ms)."""
MAX_WAIT_S = 0.005
"""How long the first request of an idle worker waits for company. At 1,000/s over two
workers, 2 ms gave batches of 1 to 3 and about 1 ms of node CPU a request (p99 95 to
235 ms on this shared machine); 5 ms gives batches of 3 to 5, 660 µs and p99 40 ms."""
MAX_IN_FLIGHT = 1
"""Batches one worker runs at once. One: a second concurrent batch mostly waits for the
first on the accounts every batch shares (clearing, commission), and costs more CPU."""


class AuthorizationService:
    """Submits uses to the worker's group committer."""

    def __init__(
        self,
        database: Database,
        caches: LendingCaches,
        render: Renderer[AuthorizedUse],
        **options: Any,
    ) -> None:
        self.caches = caches

        def run(conn: Connection, requests: list[UseRequest]) -> list[StoredResponse]:
            return run_use_batch(conn, caches, requests, render)

        self.loop = asyncio.get_running_loop()
        self.committer: GroupCommitter[UseRequest, StoredResponse] = GroupCommitter(
            database.async_engine,
            run,
            max_items=options.get("max_items", MAX_BATCH_ITEMS),
            max_wait_s=options.get("max_wait_s", MAX_WAIT_S),
            max_in_flight=options.get("max_in_flight", MAX_IN_FLIGHT),
        )

    async def authorize(self, request: UseRequest) -> StoredResponse:
        return await self.committer.submit(request)
