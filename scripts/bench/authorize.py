"""`creditnet bench authorize`: purchase authorizations per second, on PostgreSQL.

1. Creates a fresh database on the server of `database_url` (dropped at the end), migrates
   it and seeds `lines` credit lines (enough that two workers' batches rarely share a
   line, as with a real customer base) and a lender_app key; then ANALYZE, as
   autovacuum would after a bulk load (without statistics PostgreSQL scans whole tables).
2. In-process rate: the group committer driven directly by `concurrency` asyncio tasks
   in this process (no HTTP), optionally under cProfile (`profile=1`).
3. Over HTTP: the node's real app under uvicorn with `workers` worker processes, and a
   load generator in another process on the same machine: a warm-up, then the sustained
   maximum (closed loop, `concurrency` connections), then a fixed `rate_per_s` (1,000/s)
   for the latency target.
Each request buys 1 to 100 fen on a random line with its own idempotency key.

Besides rates and latencies, every phase reports the CPU each party used per request
(node workers, the PostgreSQL backends of the bench database, the load generator, read
from /proc) and the rate those costs allow on this machine's cores
(`cpu_bound_rate_per_s`): on a machine shared with other work the measured rate
depends on what else runs, the cost per request much less.
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import itertools
import os
import pstats
import random
import time
from cProfile import Profile
from dataclasses import replace
from datetime import date

from sqlalchemy import select, text
from sqlalchemy.engine import Connection, make_url

from node_api.cli.serve import NodeProcess
from node_api.http.app import freeze_startup_heap
from node_api.http.renderers import render_use
from node_api.idempotency import KeyClaim
from node_api.kernel.db import Database
from node_api.ledger.accounts import account_rows, funding_payable_spec, line_account_specs
from node_api.ledger.business_date import set_business_date
from node_api.ledger.schema import ledger_account_table, limit_node_table
from node_api.ledger.settlement_events import LimitLevel
from node_api.ledger.sql import bulk_insert, bulk_insert_returning_ids
from node_api.lending.core.context import LendingCaches
from node_api.lending.core.decide import UseKind, UseRequest
from node_api.lending.core.service import AuthorizationService
from node_api.lending.limits import (
    ROOT_PATH,
    ProductGroup,
    group_path,
    product_path,
)
from node_api.lending.lines import (
    LineOpening,
    ProductLimit,
    credit_line_table,
    fetch_line,
    open_credit_line,
)
from scripts.bench.ceiling import run_ceiling_bench
from scripts.bench.figures import Figures
from scripts.bench.http_load import LoadPlan, measure_load_phase, run_load_process
from scripts.bench.proc_cpu import postgres_cpu_s
from scripts.bench.scratch_db import scratch_database, shown_url
from scripts.bench.seed import create_app_key, register_bench_product
from scripts.bench.wal import wal_per_request, wal_position

BENCH_DAY = date(2025, 11, 11)
LINE_LIMIT_FEN = 10**10


def run_authorize_bench(
    database_url: str | None = None,
    duration_s: int = 10,
    concurrency: int = 128,
    workers: int = 2,
    lines: int = 20_000,
    rate_per_s: int = 1000,
    inprocess_s: int = 5,
    profile: int = 0,
    partitions: int = 0,
    ceiling: int = 0,
) -> Figures:
    """Run the benchmark; return its figures (authorizations per second, latencies in ms).
    With `partitions` the database's per-customer tables are hash-partitioned by customer
    (`creditnet migrate --partitions N`) before the seed. With `ceiling` 1, `bench
    ceiling` runs right after with the same load (`ceiling`), and `share_of_ceiling` is
    the node's maximum rate over the ceiling's."""
    with scratch_database(database_url, "creditnet_bench", partitions=partitions) as url:
        line_ids, token = _seed(url, lines)
        figures: Figures = {
            "load_average_before": round(os.getloadavg()[0], 2),
            "database": shown_url(url),
            "partitions": partitions,
            "lines": lines,
            "workers": workers,
            "concurrency": concurrency,
        }
        figures["in_process"] = _run_in_process(url, line_ids, inprocess_s, concurrency, profile)
        figures.update(
            _run_http(url, line_ids, token, duration_s, concurrency, workers, rate_per_s)
        )
    if ceiling:
        reference = run_ceiling_bench(
            database_url, duration_s, concurrency, workers, lines, rate_per_s
        )
        figures["ceiling"] = {key: reference[key] for key in reference if key != "database"}
        figures["share_of_ceiling"] = round(_max_rate(figures) / max(_max_rate(reference), 1.0), 3)
    return figures


def _max_rate(figures: Figures) -> float:
    """The HTTP maximum's authorizations per second."""
    peak = figures["http_max"]
    assert isinstance(peak, dict)
    rate = peak["rate_per_s"]
    assert isinstance(rate, float | int)
    return float(rate)


def _seed(url: str, count: int) -> tuple[list[int], str]:
    """A business date, the product, `count` lines and a lender_app key.

    The first line is opened by `open_credit_line` (which also creates the node and
    partner accounts); the others are copies of it written set-based, which is what
    makes tens of thousands of lines quick to seed. `_check_copy` compares one copy
    with the original.
    """
    database = Database(url)
    caches = LendingCaches()
    with database.engine.begin() as conn:
        set_business_date(conn, BENCH_DAY)
        register_bench_product(
            conn,
            "BENCH",
            limit_fen_min=1,
            limit_fen_max=LINE_LIMIT_FEN,
            daily_rate_ppm=300,
            bill_day_options=[5],
        )
        first = open_credit_line(conn, _opening(0), caches.products)
    line_ids = [first]
    for start in range(1, count, 5_000):
        with database.engine.begin() as conn:
            line_ids += _copy_lines(conn, range(start, min(start + 5_000, count)))
    with database.engine.connect() as conn:
        _check_copy(conn, first, line_ids[-1])
    with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))  # as autovacuum would after a bulk load
    token = create_app_key(database)
    database.dispose()
    return line_ids, token


def _opening(index: int) -> LineOpening:
    return LineOpening(
        customer_ref=f"bench-{index}",
        opened_on=BENCH_DAY,
        total_limit_fen=LINE_LIMIT_FEN,
        group_limits={ProductGroup.PURCHASE: LINE_LIMIT_FEN},
        products=[ProductLimit("BENCH", 1, LINE_LIMIT_FEN)],
    )


def _copy_lines(conn: Connection, indexes: range) -> list[int]:
    """Lines like the first one, written with a few set-based statements."""
    customers = [f"bench-{i}" for i in indexes]
    line_ids = bulk_insert_returning_ids(
        conn,
        credit_line_table,
        [
            {
                "customer_ref": customer,
                "currency": "CNY",
                "status": "active",
                "opened_on": BENCH_DAY,
                "bill_day": 5,
            }
            for customer in customers
        ],
    )
    parents: list[int | None] = [None] * len(line_ids)
    levels = [
        (ROOT_PATH, LimitLevel.TOTAL, None),
        (group_path(ProductGroup.PURCHASE), LimitLevel.GROUP, None),
        (product_path(ProductGroup.PURCHASE, "BENCH"), LimitLevel.PRODUCT, ("BENCH", 1)),
    ]
    for path, level, product in levels:
        rows = [
            {
                "credit_line_id": line_id,
                "parent_id": parent,
                "path": path,
                "level": level.value,
                "product_code": product[0] if product else None,
                "product_version": product[1] if product else None,
                "limit_fen": LINE_LIMIT_FEN,
                "temp_raise_fen": 0,
                "used_fen": 0,
                "customer_id": customer,
            }
            for line_id, customer, parent in zip(line_ids, customers, parents, strict=True)
        ]
        parents = list(bulk_insert_returning_ids(conn, limit_node_table, rows))
    specs = [
        spec
        for line_id, customer in zip(line_ids, customers, strict=True)
        for spec in line_account_specs(line_id, customer)
        + [funding_payable_spec(line_id, customer, "BENCH", p) for p in ("bank-a", "lender")]
    ]
    bulk_insert(conn, ledger_account_table, account_rows(specs))
    return line_ids


def _check_copy(conn: Connection, original_id: int, copy_id: int) -> None:
    """A copied line has the same tree and the same accounts as the original."""
    original, copy = fetch_line(conn, original_id), fetch_line(conn, copy_id)
    assert [(n.path, n.limit_fen) for n in original.nodes] == [
        (n.path, n.limit_fen) for n in copy.nodes
    ]
    codes = conn.execute(
        select(ledger_account_table.c.code).where(
            ledger_account_table.c.credit_line_id.in_([original_id, copy_id])
        )
    ).scalars()
    by_line: dict[str, set[str]] = {}
    for code in codes:
        _, line, kind = code.split(":", 2)
        by_line.setdefault(line, set()).add(kind)
    assert by_line[str(original_id)] == by_line[str(copy_id)]


def _run_in_process(
    url: str, line_ids: list[int], duration_s: int, concurrency: int, profile: int
) -> Figures:
    """Authorizations per second through the group committer alone (no HTTP)."""
    import uvloop

    profiler = cProfile.Profile() if profile else None
    result = uvloop.run(_drive(url, line_ids, duration_s, concurrency, profiler))
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
        result["profile_top"] = out.getvalue().splitlines()[:60]
    return result


async def _drive(
    url: str, line_ids: list[int], duration_s: int, concurrency: int, profiler: Profile | None
) -> Figures:
    database = Database(url, pool_size=4)
    service = AuthorizationService(database, LendingCaches(), render_use)
    freeze_startup_heap()
    keys = itertools.count()
    done = {"authorized": 0, "other": 0}
    rng = random.Random(7)

    async def client(deadline: float) -> None:
        while time.perf_counter() < deadline:
            request = UseRequest(
                UseKind.PURCHASE,
                rng.choice(line_ids),
                rng.randint(1, 100),
                "CNY",
                "app",
                KeyClaim("bench", f"in-{next(keys)}", "h"),
                merchant_id="m-1",
            )
            response = await service.authorize(request)
            done["authorized" if response.status_code == 201 else "other"] += 1

    await asyncio.gather(*(client(time.perf_counter() + 1.0) for _ in range(concurrency)))
    done.update(authorized=0, other=0)
    stats = service.committer.stats
    stats.batches = stats.items = 0
    stats.db_seconds = 0.0
    if profiler is not None:
        profiler.enable()
    name = str(make_url(url).database)
    wal_before = wal_position(url)
    db_before, cpu_before = postgres_cpu_s(name), time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(client(started + duration_s) for _ in range(concurrency)))
    elapsed_s = time.perf_counter() - started
    cpu_s, db_s = time.process_time() - cpu_before, postgres_cpu_s(name) - db_before
    wal_after = wal_position(url)
    if profiler is not None:
        profiler.disable()
    await database.dispose_async()
    items = max(done["authorized"] + done["other"], 1)
    return {
        "rate_per_s": round(done["authorized"] / elapsed_s, 1),
        "node_cpu_us_per_request": round(1e6 * cpu_s / items),
        "postgres_cpu_us_per_request": round(1e6 * db_s / items),
        "declined_or_failed": done["other"],
        "batches": stats.batches,
        "mean_batch_items": round(stats.items / max(stats.batches, 1), 1),
        "mean_batch_ms": round(1000 * stats.db_seconds / max(stats.batches, 1), 2),
        **wal_per_request(wal_before, wal_after, items),
    }


def _run_http(
    url: str,
    line_ids: list[int],
    token: str,
    duration_s: int,
    concurrency: int,
    workers: int,
    rate_per_s: int,
) -> Figures:
    with NodeProcess(url, workers) as server:
        base = LoadPlan("127.0.0.1", server.port, token, line_ids, 2.0, concurrency)
        run_load_process(base)
        peak = measure_load_phase(server.pid, url, replace(base, duration_s=duration_s))
        paced = measure_load_phase(
            server.pid, url, replace(base, duration_s=duration_s, rate_per_s=rate_per_s)
        )
    return {"http_max": peak, f"http_at_{rate_per_s}_per_s": paced}
