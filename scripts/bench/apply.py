"""`creditnet bench apply`: application decisions per second over HTTP, on PostgreSQL.

1. A fresh database on the server of `database_url` (dropped at the end), migrated,
   with a business date, one product and a lender_app key.
2. The node's real app under uvicorn (`workers` processes) in a subprocess.
3. A load generator in another process: `warmup` requests, then `n` distinct
   applicants in a closed loop over `concurrency` connections (the sustained
   maximum), then `rate_n` more at a fixed `rate_per_s` (latency at the target rate).
Figures: decisions per second, client p50/p99, the decision mix, and where the time
went inside the node (mean and p99 of each Server-Timing phase).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy.engine import make_url

from node_api.cli.serve import NodeProcess
from scripts.bench.apply_load import ApplyPlan, ApplyResult, run_apply_load_process
from scripts.bench.figures import Figures, percentile
from scripts.bench.proc_cpu import (
    compute_cpu_used_s,
    get_postgres_backends,
    get_process_cpu_s,
    get_process_tree,
)
from scripts.bench.scratch_db import scratch_database, shown_url
from scripts.bench.seed import seed_application_node

BENCH_DAY = date(2025, 11, 11)
PRODUCT_CODE = "APPLY"


def run_apply_bench(
    database_url: str | None = None,
    n: int = 2_000,
    concurrency: int = 4,
    workers: int = 2,
    rate_per_s: int = 100,
    rate_n: int = 1_000,
    warmup: int = 100,
) -> Figures:
    """Run the benchmark; return its figures (decisions per second, latencies in ms)."""
    with scratch_database(database_url, "creditnet_apply") as url:
        token = seed_application_node(
            url, BENCH_DAY, PRODUCT_CODE, daily_rate_ppm=500, bill_day_options=[5, 20]
        )
        figures: Figures = {
            "database": shown_url(url),
            "workers": workers,
            "concurrency": concurrency,
        }
        with NodeProcess(url, workers) as server:
            port = server.port
            plan = ApplyPlan("127.0.0.1", port, token, PRODUCT_CODE, 1, warmup, concurrency)
            run_apply_load_process(plan)
            closed = ApplyPlan("127.0.0.1", port, token, PRODUCT_CODE, 1 + warmup, n, concurrency)
            figures["closed_loop"] = _measured(server, url, closed)
            if rate_n:
                first = 1 + warmup + n
                opened = ApplyPlan(
                    "127.0.0.1", port, token, PRODUCT_CODE, first, rate_n, 16, rate_per_s
                )
                figures[f"open_loop_{rate_per_s}_per_s"] = _measured(server, url, opened)
        return figures


def _measured(server: NodeProcess, url: str, plan: ApplyPlan) -> Figures:
    """Run one load and account CPU per decision to the node, PostgreSQL and the generator.

    PostgreSQL backends are counted if alive at the end (connections that a worker's
    pool closed during the run are missed, so that figure is a lower bound).
    """
    database_name = str(make_url(url).database)
    node_before = get_process_cpu_s(get_process_tree(server.pid))
    postgres_before = get_process_cpu_s(get_postgres_backends(database_name))
    result = run_apply_load_process(plan)
    node_s = compute_cpu_used_s(node_before, get_process_cpu_s(get_process_tree(server.pid)))
    postgres_after = get_process_cpu_s(get_postgres_backends(database_name))
    postgres_s = compute_cpu_used_s(postgres_before, postgres_after)
    figures = summarize(result)
    decided = max(result.statuses.get(201, 0), 1)
    figures["cpu_ms_per_decision"] = {
        "node": round(node_s * 1000 / decided, 2),
        "postgres": round(postgres_s * 1000 / decided, 2),
        "load_generator": round(result.cpu_s * 1000 / decided, 2),
    }
    return figures


def summarize(result: ApplyResult) -> Figures:
    """Decisions per second (every 201), client latency, decision mix, node phases."""
    decided = result.statuses.get(201, 0)
    elapsed_s = result.elapsed_s or 1.0
    ordered = sorted(result.latencies_ms)
    return {
        "requests": len(result.latencies_ms),
        "statuses": {str(s): c for s, c in sorted(result.statuses.items())},
        "decisions": dict(sorted(result.decisions.items())),
        "decisions_per_s": round(decided / elapsed_s, 1),
        "p50_ms": percentile(ordered, 0.50),
        "p99_ms": percentile(ordered, 0.99),
        "max_ms": round(max(result.latencies_ms, default=0.0), 2),
        "elapsed_s": round(elapsed_s, 2),
        "node_phases_ms": {
            phase: {
                "mean": round(sum(values) / len(values), 2),
                "p99": percentile(sorted(values), 0.99),
            }
            for phase, values in result.phases_ms.items()
        },
    }
