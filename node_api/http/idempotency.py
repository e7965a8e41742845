"""Idempotency over HTTP: the `Idempotency-Key` dependency, the caller's claim on a key,
and running a route's operation once per key.

A route that takes an idempotency key declares `once: OnceDep`: the request, its
session and its key in one parameter, and the way to run the route's operation once.
The domain side (`node_api.idempotency`) claims keys and stores responses rendered by
`node_api.http.renderers`; it never builds a response itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request, Response
from pydantic import BaseModel
from sqlmodel import Session

from node_api.auth.keys import Principal
from node_api.http.deps import SessionDep
from node_api.http.renderers import JsonRenderer, JsonView, to_response
from node_api.http.services import Services, services_of
from node_api.idempotency import (
    IDEMPOTENCY_HEADER,
    KeyClaim,
    StoredResponse,
    check_idempotency_key,
    key_claim,
    run_idempotent,
)
from node_api.lending.core.context import LendingCaches


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
