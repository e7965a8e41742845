"""The fast lane of `POST /v1/applications`: plain ASGI, run before the app's whole
middleware stack (`NodeApp.serve_lanes_first`).

It serves a decision only when everything about the request is known to be in order: a
POST to exactly `/v1/applications`, a bearer key in the principal cache whose role may
apply (`OPERATOR_ROLES`, as the route's `OperatorDep`), a well-formed idempotency key, a
JSON body within the size limit that is valid `ApplicationIn` (read with orjson and
validated in Python mode, as FastAPI validates the body it parsed). Such a request skips
the middleware stack, routing, FastAPI's dependency resolution and response objects,
and runs the whole decision (`decide_once`, the route's own code) in one worker-thread
call. Everything else (a first call of a key, bad credentials or role, a missing or
malformed idempotency key, an invalid or oversized body) goes to the regular app
unchanged, with the body the lane already read handed back, and gets exactly the
regular answer. A `CreditNetError` the decision raises (an identity that does not
check, a key reused for another request) is answered with the problem the app's
handler would give, and an unexpected error with its last-resort 500. What the regular
middleware does for every request (the request id echoed, the access-log line, the
latency histogram) the lane does with the same functions.
"""

from __future__ import annotations

import logging

import anyio.to_thread
import orjson
from pydantic import ValidationError
from starlette.datastructures import URL
from starlette.types import ASGIApp, Receive, Scope, Send

from node_api.auth.keys import Principal
from node_api.http.authz import OPERATOR_ROLES, bearer_token, cached_principal
from node_api.http.lane_io import (
    LaneExchange,
    header,
    is_json_media_type,
    read_body,
    route_path,
    send_stored,
)
from node_api.http.problems import problem_body, unexpected_error_body
from node_api.http.routes.applications import ApplicationIn, decide_once, server_timing
from node_api.http.services import Services, services_of
from node_api.idempotency import StoredResponse, is_idempotency_key, key_claim
from node_api.kernel.errors import CreditNetError

APPLICATIONS_PATH = "/v1/applications"
_SERVER_TIMING = b"server-timing"

log = logging.getLogger("creditnet.api")
"""The logger of the app's problem handlers (`node_api.http.problems`)."""


def lane_caller(scope: Scope) -> tuple[Principal, str] | None:
    """The caller and idempotency key, if the lane may serve this request once its body
    validates; None sends it to the regular route."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return None
    if route_path(scope) != APPLICATIONS_PATH or scope.get("app") is None:
        return None
    token = bearer_token(header(scope, b"authorization"))
    key = header(scope, b"idempotency-key")
    if token is None or key is None or not is_idempotency_key(key):
        return None
    if not is_json_media_type(header(scope, b"content-type")):
        return None
    principal = cached_principal(services_of(scope["app"]), token)
    if principal is None or principal.role not in OPERATOR_ROLES:
        return None
    return principal, key


def parse_application(raw: bytes) -> ApplicationIn | None:
    """The valid body, or None (the regular route then reports why, as it always does).

    orjson accepts a subset of what FastAPI's `json.loads` does (no NaN, no integer
    beyond 64 bits) and reads the same values from it; the document is then validated
    in Python mode, as FastAPI does, so the lane accepts no body the route refuses."""
    try:
        return ApplicationIn.model_validate(orjson.loads(raw))
    except (orjson.JSONDecodeError, ValidationError):
        return None


class ApplicationFastLane:
    """See the module docstring. `served` counts the requests it answered itself."""

    served = 0

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        caller = lane_caller(scope) if scope["type"] == "http" else None
        if caller is None:
            await self.app(scope, receive, send)
            return
        services = services_of(scope["app"])
        read = await read_body(scope, receive, services.settings.max_body_bytes)
        body = None if read.body is None else parse_application(read.body)
        if body is None:
            await self.app(scope, read.receive, send)
            return
        await self._serve(scope, send, services, caller, body)

    async def _serve(
        self,
        scope: Scope,
        send: Send,
        services: Services,
        caller: tuple[Principal, str],
        body: ApplicationIn,
    ) -> None:
        with LaneExchange(
            scope, "POST", APPLICATIONS_PATH, log_requests=services.settings.access_log
        ) as exchange:
            who, key = caller
            path = URL(scope=scope).path  # the route's `request.url.path`
            claim = key_claim(who.key_id, key, path, body.model_dump(mode="json"))
            try:
                stored, phases_ms = await anyio.to_thread.run_sync(
                    decide_once, services, claim, body
                )
            except CreditNetError as error:
                stored = _problem_of(error, path)
                if stored.status_code == 401:
                    exchange.headers.append((b"www-authenticate", b"Bearer"))
            except Exception:  # the lane runs before the app's last-resort handler
                stored = StoredResponse(500, unexpected_error_body(path))
            else:
                exchange.headers.append((_SERVER_TIMING, server_timing(phases_ms).encode()))
            await send_stored(send, exchange, stored)
            ApplicationFastLane.served += 1


def _problem_of(error: CreditNetError, path: str) -> StoredResponse:
    """The answer the app's handler gives a domain error raised by the route."""
    body = problem_body(error)
    if body["status"] >= 500:
        log.error("domain error", extra={"code": error.code})
    body.setdefault("instance", path)
    return StoredResponse(int(body["status"]), body)
