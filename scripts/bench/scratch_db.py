"""Throwaway PostgreSQL databases for benchmarks: created and migrated, dropped after.

The server is the one of `database_url`, else of `CREDITNET_BENCH_PG_URL`, else the
local default; the benchmark's database is a new one next to that URL's.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from node_api.schema.migrate import migrate
from node_api.schema.partitioning import partition_tables

DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
ADMIN_URL_ENV = "CREDITNET_BENCH_PG_URL"


@contextmanager
def scratch_database(
    database_url: str | None,
    prefix: str,
    *,
    keep: bool = False,
    partitions: int = 0,
    migrated: bool = True,
) -> Iterator[str]:
    """A new migrated (or, with `migrated=False`, empty) database (its URL) for the `with`
    block, its per-customer tables hash-partitioned into `partitions` when above 0;
    dropped after unless `keep`."""
    admin_url = database_url or os.environ.get(ADMIN_URL_ENV, DEFAULT_ADMIN_URL)
    url = create_scratch_database(admin_url, prefix, migrated=migrated)
    if partitions:
        engine = create_engine(url)
        try:
            partition_tables(engine, partitions)
        finally:
            engine.dispose()
    try:
        yield url
    finally:
        if not keep:
            drop_scratch_database(admin_url, url)


def create_scratch_database(admin_url: str, prefix: str, *, migrated: bool = True) -> str:
    """A new database next to `admin_url`'s, migrated unless told; returns its URL."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    if migrated:
        migrate(url)
    return url


def drop_scratch_database(admin_url: str, url: str) -> None:
    name = make_url(url).database
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def shown_url(url: str) -> str:
    """The database URL as the figures show it (password hidden)."""
    return make_url(url).render_as_string(hide_password=True)
