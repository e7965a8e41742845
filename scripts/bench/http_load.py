"""A lean HTTP/1.1 load generator for the authorization benchmark (no wrk here).

Keep-alive connections on raw asyncio streams (uvloop), requests pre-formatted as bytes,
responses parsed only as far as the status and `content-length`: a few tens of
microseconds of CPU per request, so the generator takes little of the machine it shares
with the node. Two modes:
- closed loop: every connection sends its next request as soon as the last one answered
  (the sustained maximum);
- open loop at `rate_per_s`: requests are due at fixed times and latency counts from the
  time a request was due, so a stalled server cannot hide its queueing delay.
Run it in its own process (`run_load_process`).
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy.engine import make_url

from scripts.bench.figures import Figures, percentile
from scripts.bench.proc_cpu import postgres_cpu_s, tree_cpu_s
from scripts.bench.wal import wal_per_request, wal_position


@dataclass(frozen=True)
class LoadPlan:
    host: str
    port: int
    token: str
    line_ids: list[int]
    duration_s: float
    connections: int
    rate_per_s: int = 0
    """0 = closed loop (as fast as the server answers)."""
    amount_fen_max: int = 100
    path_template: str = "/v1/credit-lines/{line_id}/purchases"


@dataclass
class LoadResult:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    elapsed_s: float = 0.0
    cpu_s: float = 0.0
    """CPU seconds the load generator itself used."""


def _request_bytes(plan: LoadPlan, key: str, rng: random.Random) -> bytes:
    line_id = rng.choice(plan.line_ids)
    body = orjson.dumps(
        {
            "merchant_id": f"m-{rng.randrange(1000)}",
            "channel_id": "app",
            "amount_fen": rng.randint(1, plan.amount_fen_max),
            "currency": "CNY",
        }
    )
    head = (
        f"POST {plan.path_template.format(line_id=line_id)} HTTP/1.1\r\n"
        f"Host: {plan.host}\r\nAuthorization: Bearer {plan.token}\r\n"
        f"Idempotency-Key: {key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    start = lower.find(b"content-length:")
    if start >= 0:
        end = lower.find(b"\r\n", start)
        length = int(lower[start + 15 : end])
        await reader.readexactly(length)
    return status


async def _connection(
    plan: LoadPlan, result: LoadResult, deadline: float, slots: itertools.count[int], start: float
) -> None:
    reader, writer = await asyncio.open_connection(plan.host, plan.port)
    rng = random.Random(os.getpid() * 7919 + id(writer))
    prefix = f"bench-{os.getpid()}-{id(writer)}-"
    sent = 0
    try:
        while True:
            if plan.rate_per_s:
                due = start + next(slots) / plan.rate_per_s
                if due >= deadline:
                    return
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            else:
                due = time.perf_counter()
                if due >= deadline:
                    return
            sent += 1
            writer.write(_request_bytes(plan, f"{prefix}{sent}", rng))
            status = await _read_response(reader)
            result.latencies_ms.append((time.perf_counter() - due) * 1000)
            result.statuses[status] = result.statuses.get(status, 0) + 1
    finally:
        writer.close()


async def run_load(plan: LoadPlan) -> LoadResult:
    """Drive the plan to its end; return every latency and status count."""
    result = LoadResult()
    start = time.perf_counter()
    deadline = start + plan.duration_s
    slots = itertools.count()
    await asyncio.gather(
        *(_connection(plan, result, deadline, slots, start) for _ in range(plan.connections))
    )
    result.elapsed_s = time.perf_counter() - start
    return result


def _process_main(plan: LoadPlan, queue: Any) -> None:
    import uvloop

    started_cpu_s = time.process_time()
    result = uvloop.run(run_load(plan))
    cpu_s = time.process_time() - started_cpu_s
    queue.put((result.latencies_ms, result.statuses, result.elapsed_s, cpu_s))


def run_load_process(plan: LoadPlan) -> LoadResult:
    """Run the load in a separate process (its own core time, its own GIL)."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_process_main, args=(plan, queue))
    process.start()
    latencies_ms, statuses, elapsed_s, cpu_s = queue.get(timeout=plan.duration_s + 120)
    process.join(timeout=30)
    return LoadResult(latencies_ms, statuses, elapsed_s, cpu_s)


def load_generator_cpu_us(result: LoadResult) -> int:
    """Microseconds of the generator's own CPU per request it sent."""
    return round(1e6 * result.cpu_s / max(len(result.latencies_ms), 1))


def summarize(result: LoadResult) -> Figures:
    """Rate of authorizations (2xx) and latency percentiles of every answer."""
    ordered = sorted(result.latencies_ms)
    authorized = sum(count for status, count in result.statuses.items() if 200 <= status < 300)
    elapsed_s = result.elapsed_s or 1.0
    return {
        "requests": len(ordered),
        "authorized": authorized,
        "statuses": {str(status): count for status, count in sorted(result.statuses.items())},
        "rate_per_s": round(authorized / elapsed_s, 1),
        "p50_ms": percentile(ordered, 0.50),
        "p99_ms": percentile(ordered, 0.99),
        "max_ms": round(ordered[-1], 2) if ordered else 0.0,
        "elapsed_s": round(elapsed_s, 2),
        "load_generator_cpu_us_per_request": load_generator_cpu_us(result),
    }


def measure_load_phase(server_pid: int, database_url: str, plan: LoadPlan) -> Figures:
    """One load phase, with the CPU each party used and the WAL PostgreSQL wrote per
    authorization."""
    database_name = str(make_url(database_url).database)
    wal_before = wal_position(database_url)
    node_before, db_before = tree_cpu_s(server_pid), postgres_cpu_s(database_name)
    result = run_load_process(plan)
    node_s = tree_cpu_s(server_pid) - node_before
    db_s = postgres_cpu_s(database_name) - db_before
    figures = summarize(result)
    requests = max(len(result.latencies_ms), 1)
    figures.update(wal_per_request(wal_before, wal_position(database_url), requests))
    node_us = round(1e6 * node_s / requests)
    postgres_us = round(1e6 * db_s / requests)
    figures["node_cpu_us_per_request"] = node_us
    figures["postgres_cpu_us_per_request"] = postgres_us
    total_us = node_us + postgres_us + load_generator_cpu_us(result)
    # What the machine could do if these three parties had all its cores to themselves:
    # the figure that stays comparable when other work shares the machine.
    figures["cpu_bound_rate_per_s"] = round(len(os.sched_getaffinity(0)) * 1e6 / max(total_us, 1))
    figures["load_average_after"] = round(os.getloadavg()[0], 2)
    return figures
