"""`creditnet bench eod`: end of day for `lines` active lines on PostgreSQL.

1. Creates a fresh database on the server of `database_url` (or `CREDITNET_BENCH_PG_URL`,
   default the local server), dropped at the end, migrates it and seeds the lines (see
   `eod_seed`: on the bench date half the lines cut a bill, half have a bill due; 15%
   accrue revolving interest, 5% are past due).
2. Times `run_eod` for the bench date (the whole close: every step), optionally under
   cProfile (`profile=1`), then checks the books still balance.
3. With `workers=N` (N > 1) it first copies the seeded database (`CREATE DATABASE ...
   TEMPLATE`), closes the date with one worker on one copy and with N (in shards by
   customer, `runner=process` or `thread`) on the other, and checks both wrote the same
   books (every account's balance, every posting batch, bill and line state).
Figures: seconds, lines per second, each step's lines, posting batches and seconds; the
CPU seconds of this process and of the database's PostgreSQL backends during the close
(`cpu_s_python`, `cpu_s_postgres`, read from `getrusage` and `/proc/PID/stat` of the
server's backends when it is local) and their sum per line (`cpu_us_per_line`), which a
shared machine disturbs less than the elapsed time (with workers, `cpu_s_python` is the
coordinating process's alone: the shard processes are not counted); this process's peak
RSS; with workers, the seconds to start the worker processes, the one-worker seconds, the
speed-up (one worker's seconds over N's, with and without their start) and the 1-minute
load average before and after (the machine may be shared).
"""

from __future__ import annotations

import cProfile
import hashlib
import io
import os
import pstats
import resource
import time

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from node_api.http.renderers import render_use
from node_api.idempotency import KeyClaim
from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from node_api.ledger.balances import fetch_trial_balance
from node_api.lending.core.batch import run_use_batch
from node_api.lending.core.context import LendingCaches, LendingPolicy
from node_api.lending.core.decide import UseKind, UseRequest
from node_api.lending.eod import EodContext, run_eod
from node_api.lending.eod.context import ShardRunner, new_eod_caches
from node_api.lending.eod.parallel import ShardPool
from scripts.bench.eod_seed import BENCH_DAY, seed_bench
from scripts.bench.figures import Figures
from scripts.bench.scratch_db import (
    ADMIN_URL_ENV,
    DEFAULT_ADMIN_URL,
    drop_scratch_database,
    scratch_database,
    shown_url,
)

BOOKS_QUERIES = (
    "SELECT code, balance_fen FROM ledger_account ORDER BY code",
    "SELECT b.business_key, a.code, p.amount_fen FROM posting_batch b"
    " JOIN posting p ON p.batch_id = b.id JOIN ledger_account a ON a.id = p.account_id"
    " ORDER BY b.business_key, a.code, p.amount_fen",
    "SELECT credit_line_id, bill_date, due_date, statement_balance_fen, minimum_payment_fen,"
    " days_past_due, bucket FROM bill ORDER BY credit_line_id, bill_date",
    "SELECT credit_line_id, as_of, revolving, days_past_due, bucket, loan_class,"
    " provision_fen FROM line_delinquency ORDER BY credit_line_id",
)


def run_eod_bench(
    lines: int = 10_000,
    database_url: str | None = None,
    batch_lines: int = 2_000,
    profile: int = 0,
    keep: int = 0,
    workers: int = 1,
    runner: str = "process",
    compare: int = 1,
    used_pct: int = 0,
) -> Figures:
    """Seed `lines` lines on a fresh database and time the bench date's end of day
    (`compare=0` with `workers` > 1: the sharded run alone, without the one-worker run
    and the books comparison, for sizes where both would take too long; `used_pct`: the
    share of lines, in percent, that make a purchase on the bench date before it closes,
    through the authorization path, so end of day's funding step has their shares to
    post)."""
    shard_runner: ShardRunner = "thread" if runner == "thread" else "process"
    with scratch_database(database_url, "creditnet_bench_eod", keep=bool(keep)) as url:
        database = Database(url, pool_size=2)
        try:
            started = time.perf_counter()
            with database.engine.begin() as conn:
                seed_bench(conn, lines)
            seed_s = time.perf_counter() - started
            used = _use_lines(database, used_pct)
            if workers > 1 and compare:
                database.dispose()
                figures = _compare(database_url, url, lines, batch_lines, workers, shard_runner)
            elif workers > 1:
                ctx = EodContext(
                    caches=_node_caches(),
                    batch_lines=batch_lines,
                    workers=workers,
                    shard_runner=shard_runner,
                )
                with ShardPool(database, ctx) as pool:
                    pool.start()
                    figures = _run(database, lines, ctx, profile, pool)
                figures["peak_rss_mib_shard_process"] = _peak_rss_mib(resource.RUSAGE_CHILDREN)
            else:
                ctx = EodContext(caches=_node_caches(), batch_lines=batch_lines)
                figures = _run(database, lines, ctx, profile)
            figures["seed_s"] = round(seed_s, 1)
            figures["lines_used_on_the_day"] = used
            figures["database"] = shown_url(url)
            return figures
        finally:
            database.dispose()


def _node_policy() -> LendingPolicy:
    """A node's default lending policy (its back-dating window sets the funding step's
    look-back, as in `creditnet eod` and the node's scheduler)."""
    return LendingPolicy.from_settings(Settings())


def _node_caches() -> LendingCaches:
    """End of day's caches with a node's default lending policy."""
    return new_eod_caches(_node_policy())


def _use_lines(database: Database, used_pct: int) -> int:
    """A purchase of 100.00 on the bench date on every line whose id is a multiple of
    100 / `used_pct` (none at 0), 100 a group-committed batch; the number accepted."""
    if used_pct <= 0:
        return 0
    step = max(1, round(100 / used_pct))
    with database.engine.connect() as conn:
        found = conn.execute(
            text("SELECT id FROM credit_line WHERE id % :step = 0 ORDER BY id"), {"step": step}
        )
        ids = [int(line_id) for line_id in found.scalars()]
    caches = LendingCaches(policy=_node_policy())
    accepted = 0
    for first in range(0, len(ids), 100):
        requests = [
            UseRequest(
                kind=UseKind.PURCHASE,
                credit_line_id=line_id,
                amount_fen=10_000,
                currency="CNY",
                channel_id="app",
                merchant_id="m-1",
                claim=KeyClaim("bench-eod", f"use-{line_id}", "h"),
            )
            for line_id in ids[first : first + 100]
        ]
        with database.engine.begin() as conn:
            answers = run_use_batch(conn, caches, requests, render_use)
        accepted += sum(1 for answer in answers if answer.status_code == 201)
    return accepted


def _compare(
    database_url: str | None,
    url: str,
    lines: int,
    batch_lines: int,
    workers: int,
    shard_runner: ShardRunner,
) -> Figures:
    """One worker on the seeded database, `workers` on its copy; the speed-up."""
    admin_url = database_url or os.environ.get(ADMIN_URL_ENV, DEFAULT_ADMIN_URL)
    copy_url = _copy_database(admin_url, url)
    load_before = os.getloadavg()[0]
    try:
        single = Database(url, pool_size=2)
        sharded = Database(copy_url, pool_size=2)
        try:
            one = _run(single, lines, EodContext(caches=_node_caches(), batch_lines=batch_lines), 0)
            ctx = EodContext(
                caches=_node_caches(),
                batch_lines=batch_lines,
                workers=workers,
                shard_runner=shard_runner,
            )
            with ShardPool(sharded, ctx) as pool:
                started = time.perf_counter()
                pool.start()
                start_s = time.perf_counter() - started
                many = _run(sharded, lines, ctx, 0, pool)
            identical = _digest_books(single) == _digest_books(sharded)
        finally:
            single.dispose()
            sharded.dispose()
    finally:
        drop_scratch_database(admin_url, copy_url)
    elapsed_one_s = float(one["elapsed_s"])  # type: ignore[arg-type]
    run_many_s = float(many["elapsed_s"])  # type: ignore[arg-type]
    return many | {
        "workers": workers,
        "runner": shard_runner,
        "elapsed_s": round(start_s + run_many_s, 2),
        "lines_per_s": round(lines / (start_s + run_many_s)),
        "workers_start_s": round(start_s, 2),
        "elapsed_s_after_start": run_many_s,
        "elapsed_s_workers_1": elapsed_one_s,
        "speedup": round(elapsed_one_s / (start_s + run_many_s), 2),
        "speedup_after_start": round(elapsed_one_s / run_many_s, 2),
        "books_identical_to_workers_1": identical,
        "load_average_1m_before": round(load_before, 2),
        "load_average_1m_after": round(os.getloadavg()[0], 2),
        "steps_workers_1": one["steps"],
    }


def _copy_database(admin_url: str, url: str) -> str:
    """A copy of the database at `url` (no connection may be open to it); its URL."""
    name = make_url(url).database
    copy_name = f"{name}_w"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{copy_name}" TEMPLATE "{name}"'))
    admin.dispose()
    return make_url(url).set(database=copy_name).render_as_string(hide_password=False)


def _peak_rss_mib(who: int) -> int:
    """The peak resident memory of this process (the seed, in chunks, and the close's
    coordinator), or of the largest of its ended children (the shard processes)."""
    return round(resource.getrusage(who).ru_maxrss / 1024)


def _digest_books(database: Database) -> list[str]:
    """A SHA-256 per query of `BOOKS_QUERIES` (the books keyed by business facts)."""
    digests = []
    with database.engine.connect() as conn:
        for query in BOOKS_QUERIES:
            digest = hashlib.sha256()
            for row in conn.execute(text(query)):
                digest.update(repr(tuple(row)).encode())
            digests.append(digest.hexdigest())
    return digests


def _run(
    database: Database, lines: int, ctx: EodContext, profile: int, pool: ShardPool | None = None
) -> Figures:
    profiler = cProfile.Profile() if profile else None
    backends_before = _backend_cpu_s(database)
    python_before = _own_cpu_s()
    started = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    summary = run_eod(database, BENCH_DAY, ctx=ctx, pool=pool)
    if profiler is not None:
        profiler.disable()
    elapsed_s = time.perf_counter() - started
    python_s = _own_cpu_s() - python_before
    backends_after = _backend_cpu_s(database)
    # A backend that ended during the close is not counted (the pool keeps its own).
    postgres_s = sum(
        after_s - backends_before.get(pid, 0.0) for pid, after_s in backends_after.items()
    )
    with database.engine.connect() as conn:
        balanced = fetch_trial_balance(conn).balanced
    figures: Figures = {
        "lines": lines,
        "batch_lines": ctx.batch_lines,
        "workers": ctx.workers,
        "as_of": BENCH_DAY.isoformat(),
        "elapsed_s": round(elapsed_s, 2),
        "lines_per_s": round(lines / elapsed_s),
        "posting_batches": summary.postings,
        "books_balanced": balanced,
        "cpu_s_python": round(python_s, 2),
        "cpu_s_postgres": round(postgres_s, 2),
        "cpu_us_per_line": round((python_s + postgres_s) * 1e6 / lines),
        "peak_rss_mib": _peak_rss_mib(resource.RUSAGE_SELF),
        "steps": {
            step.name: {
                "lines": step.lines,
                "postings": step.postings,
                "elapsed_s": round(step.elapsed_s, 2),
            }
            for step in summary.steps
        },
    }
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(40)
        figures["profile"] = out.getvalue()
    return figures


def _own_cpu_s() -> float:
    """User plus system CPU seconds of this process (not of worker processes)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _backend_cpu_s(database: Database) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend connected to the database, by pid;
    empty when the server is not on this machine (its `/proc` is not ours to read)."""
    with database.engine.connect() as conn:
        pids = conn.execute(
            text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        ).scalars()
        found: dict[int, float] = {}
        ticks_per_s = os.sysconf("SC_CLK_TCK")
        for pid in pids:
            try:
                with open(f"/proc/{pid}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # Fields 14 and 15 of stat(5) (utime, stime), counted after the command name.
            found[int(pid)] = (int(fields[11]) + int(fields[12])) / ticks_per_s
    return found
