"""`creditnet bench rolling`: a rolling restart of two nodes under purchase load.

Two `creditnet up` nodes serve one PostgreSQL database (lines and a lender_app key seeded
as for `bench authorize`); a client spreads purchase authorizations over both, the way a
load balancer does: each keep-alive connection is pinned to one node, and when a node
refuses the connection or closes it before answering, the same request (same
Idempotency-Key, so it can never be booked twice) goes to the other node. Under that load
node-a is stopped with SIGTERM (it drains), started again, and then node-b the same way.

Figures: requests answered, statuses, `failed` (any answer but 201, must be 0),
`resent` (requests moved to the other node), `booked` (purchases in the books: one per
request, however often it was sent), each node's drain exit code and the time each
restart took.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import sqlalchemy as sa

from node_api.kernel.db import Database
from oracles.anvil import AnvilProcess, pick_free_port
from scripts.bench.authorize import _seed as seed_lines
from scripts.bench.failover import NodeProcess, _node_env
from scripts.bench.figures import Figures
from scripts.bench.scratch_db import scratch_database

PURCHASE = sa.table("purchase")
RESEND_MAX = 20
RESEND_PAUSE_S = 0.05


@dataclass
class RollingLoad:
    """Purchases spread over the nodes' ports until `stop` is set."""

    ports: list[int]
    token: str
    line_ids: list[int]
    connections: int = 4
    rate_per_s: int = 100
    stop: threading.Event = field(default_factory=threading.Event)
    statuses: dict[int, int] = field(default_factory=dict)
    resent: int = 0
    lost: int = 0
    """Requests that no node answered after `RESEND_MAX` tries."""

    def run(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        slots = itertools.count()
        start = time.monotonic()
        await asyncio.gather(
            *(self._connection(number, slots, start) for number in range(self.connections))
        )

    def _request(self, number: int, sent: int) -> bytes:
        line_id = self.line_ids[(number * 7919 + sent) % len(self.line_ids)]
        body = orjson.dumps(
            {"merchant_id": "m-roll", "channel_id": "app", "amount_fen": 1, "currency": "CNY"}
        )
        head = (
            f"POST /v1/credit-lines/{line_id}/purchases HTTP/1.1\r\nHost: node\r\n"
            f"Authorization: Bearer {self.token}\r\nIdempotency-Key: roll-{number}-{sent}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    async def _connection(self, number: int, slots: itertools.count[int], start: float) -> None:
        backend = number % len(self.ports)
        stream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        sent = 0
        while not self.stop.is_set():
            delay = start + next(slots) / self.rate_per_s - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            sent += 1
            request = self._request(number, sent)
            for attempt in range(RESEND_MAX):
                try:
                    if stream is None:
                        stream = await asyncio.open_connection("127.0.0.1", self.ports[backend])
                    stream[1].write(request)
                    status = await _read_status(stream[0])
                    self.statuses[status] = self.statuses.get(status, 0) + 1
                    break
                except (OSError, asyncio.IncompleteReadError):
                    if stream is not None:
                        stream[1].close()
                    stream = None
                    backend = (backend + 1) % len(self.ports)
                    self.resent += 1
                    await asyncio.sleep(RESEND_PAUSE_S if attempt else 0)
            else:
                self.lost += 1
        if stream is not None:
            stream[1].close()


async def _read_status(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lower = head.lower()
    start = lower.find(b"content-length:")
    if start >= 0:
        end = lower.find(b"\r\n", start)
        await reader.readexactly(int(lower[start + 15 : end]))
    return int(head[9:12])


def _count_purchases(url: str) -> int:
    """Purchases in the books: one per Idempotency-Key the client used, never more."""
    database = Database(url)
    try:
        with database.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(PURCHASE)).scalar_one())
    finally:
        database.dispose()


def _restart(node: NodeProcess) -> tuple[int, float]:
    """SIGTERM (drain), wait for the exit, start again until healthy: (exit code, seconds)."""
    started = time.monotonic()
    node.signal(signal.SIGTERM)
    exit_code = node.wait(60)
    node.start()
    node.wait_healthy()
    return exit_code, time.monotonic() - started


def _partition(url: str, data_dir: Path, partitions: int) -> None:
    """`creditnet migrate --partitions N` on the database, as an operator runs it."""
    env = {**os.environ, "CREDITNET_DATABASE_URL": url}
    command = [sys.executable, "-m", "node_api.cli", "migrate", "--data-dir", str(data_dir)]
    subprocess.run(
        [*command, "--partitions", str(partitions)],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )


def run_rolling_bench(
    lines: int = 50,
    rate_per_s: int = 100,
    settle_s: int = 2,
    database_url: str | None = None,
    partitions: int = 0,
) -> Figures:
    """Restart node-a then node-b under `rate_per_s` purchases a second (on a database
    hash-partitioned by customer into `partitions` when above 0)."""
    with tempfile.TemporaryDirectory(prefix="creditnet-bench-rolling-") as tmp:
        folder = Path(tmp)
        anvil = AnvilProcess(pick_free_port(), folder / "chain" / "state.json")
        anvil.start()
        nodes: list[NodeProcess] = []
        try:
            with scratch_database(database_url, "creditnet_rolling") as url:
                if partitions:
                    _partition(url, folder / "data", partitions)
                line_ids, token = seed_lines(url, lines)
                env = _node_env(url, anvil.rpc_url, lease_ttl_s=3)
                nodes = [NodeProcess(n, folder / "data", env) for n in ("node-a", "node-b")]
                for node in nodes:
                    node.start()
                    node.wait_healthy()
                load = RollingLoad([n.port for n in nodes], token, line_ids, rate_per_s=rate_per_s)
                driver = threading.Thread(target=load.run, daemon=True)
                started = time.monotonic()
                driver.start()
                restarts: dict[str, dict[str, float | int]] = {}
                for node in nodes:
                    time.sleep(settle_s)
                    exit_code, seconds = _restart(node)
                    restarts[node.node_id] = {
                        "drain_exit_code": exit_code,
                        "restart_s": round(seconds, 3),
                    }
                time.sleep(settle_s)
                load.stop.set()
                driver.join(30)
                elapsed_s = time.monotonic() - started
                booked = _count_purchases(url)
        finally:
            for node in nodes:
                node.kill()
            anvil.stop()
    answered = sum(load.statuses.values())
    return {
        "requests": answered + load.lost,
        "statuses": {str(status): count for status, count in sorted(load.statuses.items())},
        "failed": answered - load.statuses.get(201, 0) + load.lost,
        "resent": load.resent,
        "booked": booked,
        "elapsed_s": round(elapsed_s, 3),
        "rate_per_s": round(answered / elapsed_s, 1),
        "restarts": restarts,
        "partitions": partitions,
    }
