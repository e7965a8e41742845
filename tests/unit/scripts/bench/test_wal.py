"""WAL per request: the distance between two WAL positions, per request."""

from __future__ import annotations

from scripts.bench.wal import wal_per_request


def test_wal_per_request_divides_the_distance_by_the_requests() -> None:
    assert wal_per_request(80_000, 677_000, 100) == {"wal_bytes_per_request": 5_970}


def test_no_request_counts_as_one() -> None:
    assert wal_per_request(0, 300, 0) == {"wal_bytes_per_request": 300}
