"""Idempotency over HTTP: the `Idempotency-Key` dependency, the caller's claim on a key,
and running a route's operation once per key.

The domain side (`node_api.idempotency`) claims keys and stores responses rendered by
`node_api.http.renderers`; it never builds a response itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Header, Request, Response
from pydantic import BaseModel
from sqlmodel import Session

from node_api.auth.keys import Principal
from node_api.http.renderers import JsonRenderer, JsonView, to_response
from node_api.http.services import services_of
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


def run_once(
    session: Session, claim: KeyClaim, status_code: int, operation: Callable[[], JsonView]
) -> StoredResponse:
    """Run `operation` once per key in the session's transaction and commit."""
    stored = run_idempotent(session, claim, operation, JsonRenderer(status_code))
    session.commit()
    return stored


def idempotent(
    request: Request,
    session: Session,
    who: Principal,
    key: str,
    body: BaseModel | None,
    status_code: int,
    operation: Callable[[LendingCaches], JsonView],
) -> Response:
    """Run a sync operation once per idempotency key, commit, and answer its response."""
    caches = services_of(request.app).lending
    claim = request_claim(request, who, key, body)
    return to_response(run_once(session, claim, status_code, lambda: operation(caches)))
