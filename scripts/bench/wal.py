"""PostgreSQL's write-ahead log written per request, for benchmarks.

CPU per request moves with the machine (on a shared 2-core machine the same code has
run twice as fast one hour as the next); the WAL a request makes PostgreSQL write does
not: it grows with the rows, index entries, row locks and updates logged for it, so it
compares code with code across machines. Read from the WAL insert position
(`pg_current_wal_insert_lsn`), which is exact at any moment (`pg_stat_wal`'s record
counts are reported by each backend up to a second late, too late for a 10-second
phase). The position is the whole server's: a benchmark's figure includes what else
wrote meanwhile, which on a benchmark's own server is next to nothing, and full-page
images after a checkpoint, which add to the bytes of the first change of each page.
"""

from __future__ import annotations

from sqlalchemy import create_engine, text

from scripts.bench.figures import Figures

_POSITION = text("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint")


def wal_position(url: str) -> int:
    """The WAL insert position of the server of `url` now, in bytes."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(_POSITION).scalar_one())
    finally:
        engine.dispose()


def wal_per_request(before: int, after: int, requests: int) -> Figures:
    """WAL bytes per request between two positions (requests rounded up to 1)."""
    return {"wal_bytes_per_request": round((after - before) / max(requests, 1))}
