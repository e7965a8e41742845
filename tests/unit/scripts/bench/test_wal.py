"""WAL per request: the difference of two marks of the server's counters, per request."""

from __future__ import annotations

from scripts.bench.wal import WalMark, wal_per_request


def test_wal_per_request_divides_the_difference_by_the_requests() -> None:
    figures = wal_per_request(WalMark(1_000, 80_000), WalMark(8_150, 677_000), 100)
    assert figures == {"wal_records_per_request": 71.5, "wal_bytes_per_request": 5_970}


def test_no_request_counts_as_one() -> None:
    figures = wal_per_request(WalMark(0, 0), WalMark(3, 300), 0)
    assert figures == {"wal_records_per_request": 3.0, "wal_bytes_per_request": 300}
