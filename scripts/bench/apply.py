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

import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import date
from typing import Any

import httpx
from sqlalchemy.engine import make_url

from node_api.auth.keys import Role, create_api_key
from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from node_api.ledger.business_date import set_business_date
from node_api.lending.product_versions import register_product_version
from node_api.lending.products import parse_product_terms
from scripts.bench.apply_load import ApplyPlan, ApplyResult, run_apply_load_process
from scripts.bench.proc_cpu import (
    compute_cpu_used_s,
    get_postgres_backends,
    get_process_cpu_s,
    get_process_tree,
)
from scripts.bench.scratch_db import create_scratch_database, drop_scratch_database

DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
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
) -> dict[str, Any]:
    """Run the benchmark; return its figures (rates per second, latencies in ms)."""
    admin_url = database_url or os.environ.get("CREDITNET_BENCH_PG_URL", DEFAULT_ADMIN_URL)
    url = create_scratch_database(admin_url, "creditnet_apply")
    try:
        token = _seed(url)
        figures: dict[str, Any] = {
            "database": make_url(url).render_as_string(hide_password=True),
            "workers": workers,
            "concurrency": concurrency,
        }
        with _serve(url, workers) as server:
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
    finally:
        drop_scratch_database(admin_url, url)


def _measured(server: _serve, url: str, plan: ApplyPlan) -> dict[str, Any]:
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


def _product() -> dict[str, Any]:
    return {
        "product_code": PRODUCT_CODE,
        "version": 1,
        "product_type": "revolving_purchase",
        "limit_fen_min": 10_000,
        "limit_fen_max": 5_000_000,
        "interest": {"method": "daily_ppm", "rate": 500},
        "free_interest_days": 50,
        "bill_day_options": [5, 20],
        "due_date_offset_days": 20,
        "minimum_payment": {"principal_share_bps": 1000, "floor_fen": 5000},
        "penalty_rate_ppm_per_day": 500,
        "grace_days": 3,
        "funding_split": [
            {"partner_id": "lender", "share_ppm": 300_000, "funder_rate_bps": 0},
            {"partner_id": "bank-a", "share_ppm": 700_000, "funder_rate_bps": 600},
        ],
        "channel_commission_bps": 30,
        "eligible_channels": ["app", "pos"],
    }


def _seed(url: str) -> str:
    """The business date, the product and a lender_app key (returned)."""
    database = Database(url)
    with database.engine.begin() as conn:
        set_business_date(conn, BENCH_DAY)
        register_product_version(conn, parse_product_terms(_product()))
    with database.session() as session:
        pepper = Settings().node_secret.get_secret_value().encode()
        token = create_api_key(session, Role.LENDER_APP, pepper=pepper, label="bench")
    database.dispose()
    return token


class _serve:
    """uvicorn serving the real app on a free port, stopped on exit."""

    def __init__(self, url: str, workers: int) -> None:
        self._url = url
        self._workers = workers
        self._process: subprocess.Popen[bytes] | None = None
        self._data_dir = tempfile.TemporaryDirectory(prefix="creditnet-apply-")
        self.port = 0

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def __enter__(self) -> _serve:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        env = {
            **os.environ,
            "CREDITNET_DATABASE_URL": self._url,
            "CREDITNET_DATA_DIR": self._data_dir.name,
            "CREDITNET_ENV": "dev",
        }
        command = [
            sys.executable, "-m", "uvicorn", "node_api.http.app:create_app_from_env", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--workers", str(self._workers),
            "--log-level", "warning", "--no-access-log", "--loop", "uvloop",
            "--http", "httptools",
        ]  # fmt: skip
        self._process = subprocess.Popen(command, env=env)
        _wait_healthy(port, self._process)
        self.port = port
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._data_dir.cleanup()


def _wait_healthy(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the node exited before it became healthy")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the node did not become healthy within 60 s")


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 2)


def summarize(result: ApplyResult) -> dict[str, Any]:
    """Decisions per second (every 201), client latency, decision mix, node phases."""
    decided = result.statuses.get(201, 0)
    elapsed_s = result.elapsed_s or 1.0
    return {
        "requests": len(result.latencies_ms),
        "statuses": {str(s): c for s, c in sorted(result.statuses.items())},
        "decisions": dict(sorted(result.decisions.items())),
        "decisions_per_s": round(decided / elapsed_s, 1),
        "p50_ms": _percentile(result.latencies_ms, 0.50),
        "p99_ms": _percentile(result.latencies_ms, 0.99),
        "max_ms": round(max(result.latencies_ms, default=0.0), 2),
        "elapsed_s": round(elapsed_s, 2),
        "node_phases_ms": {
            phase: {
                "mean": round(sum(values) / len(values), 2),
                "p99": _percentile(values, 0.99),
            }
            for phase, values in result.phases_ms.items()
        },
    }
