"""`creditnet bench authorize` end to end on a real PostgreSQL server, short: the node's
phases answer every request 201, and with `ceiling` the ceiling runs after it under the
same load and the node's rate is reported as a share of the ceiling's."""

from __future__ import annotations

from scripts.bench.authorize import run_authorize_bench
from tests.db_fixtures import PG_ADMIN_URL, require_postgresql


def test_the_node_is_measured_and_read_against_the_ceiling() -> None:
    require_postgresql("the benchmark runs on the server")

    figures = run_authorize_bench(
        PG_ADMIN_URL,
        duration_s=1,
        concurrency=8,
        workers=1,
        lines=30,
        rate_per_s=100,
        inprocess_s=1,
        ceiling=1,
    )

    node = figures["http_max"]
    assert isinstance(node, dict)
    assert node["statuses"] == {"201": node["requests"]} and node["rate_per_s"] > 0
    in_process = figures["in_process"]
    assert isinstance(in_process, dict)
    # Every authorization writes rows, so WAL (the server's: other tests add to it).
    assert node["wal_bytes_per_request"] > 0 and in_process["wal_bytes_per_request"] > 0
    reference = figures["ceiling"]
    assert isinstance(reference, dict)
    books = reference["books"]
    assert isinstance(books, dict)
    assert books["balanced"] is True and books["journals"] == books["authorized_answers"] > 0
    ceiling_peak = reference["http_max"]
    assert isinstance(ceiling_peak, dict) and ceiling_peak["rate_per_s"] > 0
    assert ceiling_peak["wal_bytes_per_request"] > 0
    share = figures["share_of_ceiling"]
    assert share == round(node["rate_per_s"] / ceiling_peak["rate_per_s"], 3) > 0
