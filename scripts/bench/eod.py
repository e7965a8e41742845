"""`creditnet bench eod`: end of day for `lines` active lines on PostgreSQL.

1. Creates a fresh database on the server of `database_url` (or `CREDITNET_BENCH_PG_URL`,
   default the local server), dropped at the end, migrates it and seeds the lines (see
   `eod_seed`: on the bench date half the lines cut a bill, half have a bill due; 15%
   accrue revolving interest, 5% are past due).
2. Times `run_eod` for the bench date (the whole close: every step), optionally under
   cProfile (`profile=1`), then checks the books still balance.
Figures: seconds, lines per second, and each step's lines, posting batches and seconds.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import time

from node_api.kernel.db import Database
from node_api.ledger.balances import fetch_trial_balance
from node_api.lending.eod import EodContext, run_eod
from scripts.bench.eod_seed import BENCH_DAY, seed_bench
from scripts.bench.figures import Figures
from scripts.bench.scratch_db import scratch_database, shown_url


def run_eod_bench(
    lines: int = 10_000,
    database_url: str | None = None,
    batch_lines: int = 2_000,
    profile: int = 0,
    keep: int = 0,
) -> Figures:
    """Seed `lines` lines on a fresh database and time the bench date's end of day."""
    with scratch_database(database_url, "creditnet_bench_eod", keep=bool(keep)) as url:
        database = Database(url, pool_size=2)
        try:
            started = time.perf_counter()
            with database.engine.begin() as conn:
                seed_bench(conn, lines)
            seed_s = time.perf_counter() - started
            figures = _run(database, lines, batch_lines, profile)
            figures["seed_s"] = round(seed_s, 1)
            figures["database"] = shown_url(url)
            return figures
        finally:
            database.dispose()


def _run(database: Database, lines: int, batch_lines: int, profile: int) -> Figures:
    ctx = EodContext(batch_lines=batch_lines)
    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    summary = run_eod(database, BENCH_DAY, ctx=ctx)
    if profiler is not None:
        profiler.disable()
    elapsed_s = time.perf_counter() - started
    with database.engine.connect() as conn:
        balanced = fetch_trial_balance(conn).balanced
    figures: Figures = {
        "lines": lines,
        "batch_lines": batch_lines,
        "as_of": BENCH_DAY.isoformat(),
        "elapsed_s": round(elapsed_s, 2),
        "lines_per_s": round(lines / elapsed_s),
        "posting_batches": summary.postings,
        "books_balanced": balanced,
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
