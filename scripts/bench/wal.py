"""PostgreSQL's write-ahead log written, per request, for benchmarks.

CPU per request moves with the machine (on a shared 2-core machine the same code has
run twice as fast one hour as the next); the WAL a request writes does not: it counts
the rows, index entries, row locks and updates the database had to log for it, so it
compares code with code across machines. `pg_stat_wal` (PostgreSQL 14+) covers the whole
server: a benchmark's figures include what else wrote meanwhile, which on a benchmark's
own server is next to nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import create_engine, text

from scripts.bench.figures import Figures

_READ = text("SELECT wal_records, wal_bytes FROM pg_stat_wal")


@dataclass(frozen=True, slots=True)
class WalMark:
    """The server's WAL counters at one moment."""

    records: int
    bytes: int


def wal_mark(url: str) -> WalMark:
    """The WAL counters of the server of `url` now."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            records, written = conn.execute(_READ).one()
    finally:
        engine.dispose()
    return WalMark(int(records), int(written))


def wal_per_request(before: WalMark, after: WalMark, requests: int) -> Figures:
    """WAL records and bytes per request between two marks (requests rounded up to 1)."""
    count = max(requests, 1)
    return {
        "wal_records_per_request": round((after.records - before.records) / count, 1),
        "wal_bytes_per_request": round((after.bytes - before.bytes) / count),
    }
