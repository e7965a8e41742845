"""A rolling restart: two `creditnet up` nodes on one PostgreSQL database (hash-partitioned
by customer with `creditnet migrate --partitions 4`, production's layout), under purchase
load spread over both like a load balancer does; each node in turn drains on SIGTERM and
starts again. No purchase fails, none is booked twice (each resend carries its
Idempotency-Key), and both nodes exit 0.

The harness is the `creditnet bench rolling` benchmark itself (scripts/bench/rolling.py).
"""

from __future__ import annotations

import pytest

from scripts.bench.rolling import run_rolling_bench
from tests.db_fixtures import PG_ADMIN_URL, require_postgresql

pytestmark = [pytest.mark.chain, pytest.mark.slow, pytest.mark.xdist_group("node_up")]


def test_restarting_both_nodes_in_turn_under_load_fails_no_request() -> None:
    require_postgresql("several nodes need PostgreSQL")

    figures = run_rolling_bench(
        lines=20, rate_per_s=50, settle_s=1, database_url=PG_ADMIN_URL, partitions=4
    )

    assert figures["failed"] == 0, figures["statuses"]
    assert figures["requests"] >= 200
    assert figures["booked"] == figures["requests"], "a resent purchase was booked twice"
    assert {name: r["drain_exit_code"] for name, r in figures["restarts"].items()} == {
        "node-a": 0,
        "node-b": 0,
    }
