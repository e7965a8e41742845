"""A pooled PostgreSQL connection is checked at checkout without a round trip while it is
healthy, and replaced when the server has closed it (`kernel.db.check_pooled_connection`)."""

from __future__ import annotations

import select
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection

from node_api.kernel import db as kernel_db
from node_api.kernel.db import Database


@pytest.fixture
def pool(pg_database_url: str) -> Iterator[Database]:
    database = Database(pg_database_url, pool_size=3)
    yield database
    database.dispose()


@pytest.fixture
def pings(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Every ping the checkout makes, with its outcome."""
    made: list[bool] = []
    real = kernel_db._ping

    def counted(dbapi_connection: object) -> bool:
        alive = real(dbapi_connection)
        made.append(alive)
        return alive

    monkeypatch.setattr(kernel_db, "_ping", counted)
    return made


def _backend_pid(conn: Connection) -> int:
    return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(database: Database, pids: list[int]) -> None:
    """End those backends from another connection, and wait until each pooled socket
    reads as closed (the server's message and end of stream have arrived)."""
    killer = Database(database.url, pool_size=1)
    try:
        with killer.engine.begin() as conn:
            for pid in pids:
                conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        killer.dispose()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pooled = [record.dbapi_connection for record in _pooled_records(database)]
        ready, _, _ = select.select([c.fileno() for c in pooled], [], [], 0.05)
        if len(ready) == len(pooled):
            return
    raise AssertionError("the terminated backends' sockets never read as closed")


def _pooled_records(database: Database) -> list[object]:
    queue = database.engine.pool._pool.queue  # type: ignore[attr-defined]
    return list(queue)


def test_a_healthy_pooled_connection_is_reused_without_a_round_trip(
    pool: Database, pings: list[bool]
) -> None:
    with pool.engine.connect() as conn:
        first = _backend_pid(conn)
    for _ in range(5):
        with pool.engine.connect() as conn:
            assert _backend_pid(conn) == first
    assert pings == []


def test_a_connection_the_server_closed_is_replaced_at_checkout(
    pool: Database, pings: list[bool]
) -> None:
    with pool.engine.connect() as conn:
        old = _backend_pid(conn)
    _terminate(pool, [old])
    with pool.engine.connect() as conn:
        assert _backend_pid(conn) != old
        assert conn.execute(text("SELECT 1")).scalar_one() == 1
    assert pings == [False]


def test_after_every_pooled_backend_is_ended_each_checkout_gets_a_live_connection(
    pool: Database, pings: list[bool]
) -> None:
    """As after a server restart: every connection in the pool is dead at once."""
    held = [pool.engine.connect() for _ in range(3)]
    old = {_backend_pid(conn) for conn in held}
    for conn in held:
        conn.close()
    _terminate(pool, sorted(old))
    again = [pool.engine.connect() for _ in range(3)]
    try:
        new = {_backend_pid(conn) for conn in again}
    finally:
        for conn in again:
            conn.close()
    assert not new & old
    assert pings == [False, False, False]
