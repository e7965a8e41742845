"""Idempotency over HTTP: the `Idempotency-Key` dependency, the caller's claim on a key,
and running a route's operation once per key.

A route that takes an idempotency key declares `once: OnceDep`: the request, its
session and its key in one parameter, and the way to run the route's operation once.
The domain side (`node_api.idempotency`) claims keys and stores responses rendered by
`node_api.http.renderers`; it never builds a response itself. The application decision
(a hot route) uses `run_once_committed` instead: the same guarantees in its own
transaction, without a savepoint or an ORM session.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Request, Response
from pydantic import BaseModel
from sqlalchemy import ScalarSelect, bindparam, func, null, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlmodel import Session

from node_api.auth.keys import Principal
from node_api.http.deps import SessionDep
from node_api.http.renderers import JsonRenderer, JsonView, to_response
from node_api.http.services import Services, services_of
from node_api.idempotency import (
    IDEMPOTENCY_HEADER,
    ClaimResult,
    ClaimStatus,
    KeyClaim,
    Renderer,
    ResponseAlong,
    StoredResponse,
    check_idempotency_key,
    claim_keys,
    conflict_error,
    idempotency_table,
    is_stored_status,
    key_claim,
    run_idempotent,
    store_responses,
)
from node_api.kernel.db import Database
from node_api.kernel.errors import CreditNetError
from node_api.lending.core.context import LendingCaches

Result = TypeVar("Result")


async def get_idempotency_key(
    idempotency_key: Annotated[str | None, Header(alias=IDEMPOTENCY_HEADER)] = None,
) -> str:
    """FastAPI dependency: the request's idempotency key (required). Async, so FastAPI
    does not hop to its threadpool for it."""
    return check_idempotency_key(idempotency_key)


IdempotencyKey = Annotated[str, Depends(get_idempotency_key)]


def request_claim(request: Request, who: Principal, key: str, body: BaseModel | None) -> KeyClaim:
    """The caller's claim on an idempotency key for this request and body."""
    payload = None if body is None else body.model_dump(mode="json")
    return key_claim(who.key_id, key, request.url.path, payload)


def run_once_committed(
    database: Database,
    claim: KeyClaim,
    operation: Callable[[Connection, Any, ResponseAlong[Result] | None], Result],
    render: Renderer[Result],
    phases_ms: dict[str, float] | None = None,
    read_along: ScalarSelect[Any] | None = None,
) -> StoredResponse:
    """Run `operation` once per key in a transaction of its own and commit it: the same
    answers and effects as `run_idempotent` in a session followed by its commit, in
    fewer round trips and without an ORM session on the usual path.

    The operation runs on a plain connection, without a savepoint, and gets the value of
    `read_along` (a scalar subquery, read in the transaction; None if not given), which
    on PostgreSQL comes in the claim's own statement, and a `ResponseAlong`: it may
    render its result's response and write its row with its own (one statement fewer);
    if it does not, the response is stored after it returns. When the operation raises a
    `CreditNetError`, nothing of this transaction is kept (the claim neither): an error
    that is not stored for replay (a 4xx of the input) propagates, as `run_idempotent`
    makes it; one that is (a 409) sends the request through `run_idempotent` in a new
    transaction, which claims the key again (or replays what a concurrent duplicate
    stored meanwhile), runs the operation again under its savepoint and stores that
    response. `phases_ms`, if given, gets the commit's duration (`commit`, for
    Server-Timing).
    """
    with database.engine.connect() as conn:
        result, value = claim_key(conn, claim, read_along)
        if result.status is ClaimStatus.REPLAY and result.stored is not None:
            _commit(conn, phases_ms)
            return result.stored
        if result.status is ClaimStatus.CONFLICT:
            raise conflict_error()
        along = ResponseAlong(claim, render)
        try:
            outcome = operation(conn, value, along)
        except CreditNetError as error:
            if not is_stored_status(render(error).status_code):
                raise
        else:
            response = along.response
            if response is None:
                response = render(outcome)
                store_responses(conn, [(claim, response.status_code, response.body)])
            _commit(conn, phases_ms)
            return response
    with database.session() as session:

        def again() -> Result:
            conn = session.connection()
            return operation(conn, _read(conn, read_along), None)

        stored = run_idempotent(session, claim, again, render)
        _commit(session, phases_ms)
        return stored


def claim_key(
    conn: Connection, claim: KeyClaim, read_along: ScalarSelect[Any] | None = None
) -> tuple[ClaimResult, Any]:
    """`claim_keys` for one key, and the value of `read_along` (None if not given).

    On PostgreSQL a key claimed for the first time (the usual case) takes one statement,
    the value read in it; a key claimed before, or SQLite, goes through `claim_keys`
    (the same rule: it inserts nothing for a taken key and reads its record)."""
    if conn.dialect.name == "postgresql":
        row = conn.execute(
            _claim_statement(read_along),
            {"scope": claim.scope, "key": claim.key, "request_hash": claim.request_hash},
        ).one()
        if row[0] == 1:
            return ClaimResult(ClaimStatus.CLAIMED), row[1]
        return claim_keys(conn, [claim])[0], row[1]
    result = claim_keys(conn, [claim])[0]
    return result, _read(conn, read_along)


@functools.cache
def _claim_statement(read_along: ScalarSelect[Any] | None) -> Any:
    """The claim of one key (INSERT ... ON CONFLICT DO NOTHING RETURNING) as a CTE and a
    SELECT of how many rows it inserted and of `read_along`; built once per subquery."""
    table = idempotency_table
    claimed = (
        postgresql.insert(table)
        .values(
            scope=bindparam("scope"),
            idempotency_key=bindparam("key"),
            request_hash=bindparam("request_hash"),
        )
        .on_conflict_do_nothing(index_elements=["scope", "idempotency_key"])
        .returning(table.c.scope)
        .cte("claimed")
    )
    taken = select(func.count()).select_from(claimed).scalar_subquery()
    return select(taken, read_along if read_along is not None else null())


def _read(conn: Connection, read_along: ScalarSelect[Any] | None) -> Any:
    return None if read_along is None else conn.execute(select(read_along)).scalar()


def _commit(transaction: Connection | Session, phases_ms: dict[str, float] | None) -> None:
    started = time.perf_counter()
    transaction.commit()
    if phases_ms is not None:
        phases_ms["commit"] = (time.perf_counter() - started) * 1000.0


@dataclass(frozen=True, slots=True)
class IdempotentRequest:
    """A request that must take effect once per `Idempotency-Key`: the request, the
    session the route works in (the route's own `SessionDep`, if it also takes one) and
    the key."""

    request: Request
    session: Session
    key: str

    @property
    def services(self) -> Services:
        return services_of(self.request.app)

    def claim(self, who: Principal, body: BaseModel | None) -> KeyClaim:
        """The caller's claim on the key for this request and body."""
        return request_claim(self.request, who, self.key, body)

    def stored(
        self,
        who: Principal,
        body: BaseModel | None,
        status_code: int,
        operation: Callable[[], JsonView],
    ) -> StoredResponse:
        """Run `operation` once per key in the session's transaction, commit, and answer
        the stored response (the first one's, on a replay)."""
        claim = self.claim(who, body)
        stored = run_idempotent(self.session, claim, operation, JsonRenderer(status_code))
        self.session.commit()
        return stored

    def run(
        self,
        who: Principal,
        body: BaseModel | None,
        status_code: int,
        operation: Callable[[LendingCaches], JsonView],
    ) -> Response:
        """Run a sync operation once per key with the lending caches, commit, and answer
        its response."""
        caches = self.services.lending
        return to_response(self.stored(who, body, status_code, lambda: operation(caches)))


async def get_idempotent_request(
    request: Request, session: SessionDep, key: IdempotencyKey
) -> IdempotentRequest:
    """FastAPI dependency: the request, its session and its key. Async, so it adds no
    threadpool hop; FastAPI caches `SessionDep` per request, so a route that also takes
    it gets the same session."""
    return IdempotentRequest(request, session, key)


OnceDep = Annotated[IdempotentRequest, Depends(get_idempotent_request)]
