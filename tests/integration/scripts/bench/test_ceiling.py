"""`creditnet bench ceiling` on a real PostgreSQL server, under uvicorn, over HTTP: its
books hold exactly the authorizations it answered 201 (with lines small enough that some
purchases are refused), and a key sent again answers what it answered the first time."""

from __future__ import annotations

import secrets

import httpx

from node_api.cli.serve import NodeProcess
from scripts.bench.ceiling import (
    asyncpg_dsn,
    check_books,
    create_ceiling_tables,
    run_ceiling_bench,
)
from scripts.bench.ceiling_app import DSN_ENV, TOKEN_ENV
from scripts.bench.scratch_db import scratch_database
from tests.db_fixtures import PG_ADMIN_URL, require_postgresql


def test_the_books_hold_exactly_the_authorizations_answered() -> None:
    require_postgresql("the ceiling runs on the server")

    figures = run_ceiling_bench(
        PG_ADMIN_URL, duration_s=1, concurrency=8, lines=20, rate_per_s=200, line_limit_fen=2_000
    )

    peak = figures["http_max"]
    assert peak["rate_per_s"] > 0 and peak["p99_ms"] > 0
    assert peak["node_cpu_us_per_request"] > 0 and peak["postgres_cpu_us_per_request"] > 0
    refused = peak["statuses"].get("422", 0) + figures["http_at_200_per_s"]["statuses"].get(
        "422", 0
    )
    assert refused > 0, "20 lines of 20 yuan run out within the run"
    assert figures["books"]["balanced"] is True
    assert figures["books"]["journals"] == figures["books"]["authorized_answers"] > 0


def test_a_key_sent_again_answers_the_first_answer() -> None:
    require_postgresql("the ceiling runs on the server")
    token = secrets.token_urlsafe(16)
    with scratch_database(PG_ADMIN_URL, "creditnet_ceiling_test", migrated=False) as url:
        create_ceiling_tables(url, 3, 1_000)
        environment = {DSN_ENV: asyncpg_dsn(url), TOKEN_ENV: token}
        with NodeProcess(
            url, 1, module="scripts.bench.ceiling_app", environment=environment
        ) as node:

            def post(key: str, amount_fen: int) -> httpx.Response:
                return httpx.post(
                    f"{node.url}/v1/credit-lines/2/purchases",
                    json={"amount_fen": amount_fen},
                    headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
                    timeout=10,
                )

            first = post("k1", 600)
            again = post("k1", 600)
            over = post("k2", 600)

        assert first.status_code == again.status_code == 201
        assert again.json() == first.json() and first.json()["available_fen"] == 400
        assert over.status_code == 422
        assert check_books(url, answered=1) == {
            "authorized_answers": 1, "journals": 1, "balanced": True
        }  # fmt: skip
