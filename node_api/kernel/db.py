"""Engines for SQLite (default) and PostgreSQL (production).

SQLModel sessions on a sync engine serve the cool paths; the hot paths use
SQLAlchemy Core on the async engine (asyncpg or aiosqlite), one code path for both.
"""

from __future__ import annotations

import select
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlmodel import Session, create_engine

from node_api.kernel.errors import ConfigurationError


def backend_name(url: str) -> str:
    """`sqlite` or `postgresql`."""
    return make_url(url).get_backend_name()


def sync_url(url: str) -> str:
    """The URL with the sync driver the node uses for this backend."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if parsed.get_backend_name() == "sqlite":
        return parsed.set(drivername="sqlite").render_as_string(hide_password=False)
    raise ConfigurationError(f"unsupported database backend {parsed.get_backend_name()!r}")


def async_url(url: str) -> str:
    """The URL with the async driver: asyncpg for PostgreSQL, aiosqlite for SQLite."""
    parsed = make_url(url)
    driver = {"postgresql": "postgresql+asyncpg", "sqlite": "sqlite+aiosqlite"}.get(
        parsed.get_backend_name()
    )
    if driver is None:
        raise ConfigurationError(f"unsupported database backend {parsed.get_backend_name()!r}")
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


WriteFence = Callable[[Connection], None]
"""Run first inside a background worker's write transaction: raises (the lease store's
`LeaseLost`) when the node no longer holds the worker's lease under the term's epoch."""

_thread_fence = threading.local()


@contextmanager
def fence_this_thread(fence: WriteFence) -> Iterator[None]:
    """Run `fence` first in every transaction this thread begins on a synchronous engine
    (a background worker's term: end of day, settlement, collections, the indexer), so
    each of its writes is refused once another node took the worker over. Processes and
    threads the worker starts are not fenced by it unless handed the fence
    (`fetch_thread_fence`), as end of day's shard workers are."""
    previous = getattr(_thread_fence, "fence", None)
    _thread_fence.fence = fence
    try:
        yield
    finally:
        _thread_fence.fence = previous


def fetch_thread_fence() -> WriteFence | None:
    """The fence this thread's transactions run first (None outside a fenced term), for a
    worker to hand on to the processes it starts."""
    fence: WriteFence | None = getattr(_thread_fence, "fence", None)
    return fence


def _fence_transaction(conn: Connection) -> None:
    fence: WriteFence | None = getattr(_thread_fence, "fence", None)
    if fence is not None:
        fence(conn)


def check_pooled_connection(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Pool checkout on PostgreSQL: refuse a dead connection (the pool then opens another).

    A connection resting in the pool has read everything up to its last ReadyForQuery, so
    its socket stays quiet unless the server spoke since: it closed the connection (a
    restart, a terminated backend, an idle timeout: an error message and the end of the
    stream) or sent a notice. Only then is the connection pinged (a round trip), and
    refused if that fails. A quiet socket costs one `select` instead of the round trip
    SQLAlchemy's `pool_pre_ping` makes on every checkout (one of the twelve an approved
    application's decision made). What neither check sees, a peer that vanished without
    closing, fails the first statement, which SQLAlchemy reports as a disconnect and
    invalidates the pool.
    """
    if dbapi_connection.closed or dbapi_connection.broken:
        raise DisconnectionError("the connection is closed")
    spoke, _, _ = select.select([dbapi_connection.fileno()], [], [], 0)
    if spoke and not _ping(dbapi_connection):
        raise DisconnectionError("the server closed the connection")


def _ping(dbapi_connection: Any) -> bool:
    """One empty statement outside any transaction; False if the connection is dead."""
    autocommit = dbapi_connection.autocommit
    try:
        dbapi_connection.autocommit = True
        dbapi_connection.execute(";")
        dbapi_connection.autocommit = autocommit
    except psycopg.Error:
        return False
    return True


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class Database:
    """Both engines for one database URL, created lazily."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.backend = backend_name(url)
        self._pool_size = pool_size
        self._engine: Engine | None = None
        self._async_engine: AsyncEngine | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            if self.backend == "postgresql":
                self._engine = create_engine(
                    sync_url(self.url), pool_size=self._pool_size, max_overflow=self._pool_size
                )
                event.listen(self._engine, "checkout", check_pooled_connection)
            else:
                self._engine = create_engine(
                    sync_url(self.url),
                    pool_pre_ping=True,
                    connect_args={"check_same_thread": False, "timeout": 30},
                )
            event.listen(self._engine, "begin", _fence_transaction)
            if self.backend == "sqlite":
                event.listen(self._engine, "connect", _sqlite_pragmas)
        return self._engine

    @contextmanager
    def begin_fenced(self, fence: WriteFence | None) -> Iterator[Connection]:
        """A write transaction on the sync engine that runs `fence` first, when given (a
        worker holding its lease by its own epoch rather than by this thread's fence)."""
        with self.engine.begin() as conn:
            if fence is not None:
                fence(conn)
            yield conn

    @property
    def async_engine(self) -> AsyncEngine:
        if self._async_engine is None:
            if self.backend == "postgresql":
                self._async_engine = create_async_engine(
                    async_url(self.url), pool_size=self._pool_size, max_overflow=self._pool_size
                )
            else:
                self._async_engine = create_async_engine(
                    async_url(self.url), connect_args={"timeout": 30}
                )
            if self.backend == "sqlite":
                event.listen(self._async_engine.sync_engine, "connect", _sqlite_pragmas)
        return self._async_engine

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A SQLModel session that commits on success and rolls back on error."""
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def check_reachable(self) -> None:
        """Raise one clear line when the database cannot be reached."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except OperationalError as exc:
            where = make_url(self.url).render_as_string(hide_password=True)
            raise ConfigurationError(
                f"database unreachable at {where}: {str(exc.orig).splitlines()[0]}"
            ) from None

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        self._async_engine = None

    async def dispose_async(self) -> None:
        if self._async_engine is not None:
            await self._async_engine.dispose()
            self._async_engine = None
