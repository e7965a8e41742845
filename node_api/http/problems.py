"""RFC 9457 problem+json for every error the API returns.

Domain errors carry a code, a message and fields, never an HTTP status: `PROBLEM_KINDS`
is the one table mapping their codes to statuses and titles. An error's status and
title are those of the first code found in the table, trying the instance's own code
first, then the `code` each class of its MRO declares (so a `UseDeclined` with code
`over_limit` is a 409 "Declined"); a code in no table row is a 500.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Final

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from node_api.kernel.errors import CreditNetError

PROBLEM_MEDIA_TYPE = "application/problem+json"


class ProblemResponse(Response):
    """An RFC 9457 body rendered with orjson (any int: see `dump_problem`)."""

    media_type = PROBLEM_MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        return dump_problem(content)


def dump_problem(content: Any) -> bytes:
    """JSON of a problem body. orjson refuses integers beyond 64 bits (a computed cost of
    an absurd product can be one); the standard library writes any int exactly, so it
    takes over for the rare body orjson cannot encode. Anything else unknown becomes
    its string."""
    try:
        return orjson.dumps(content, default=str)
    except orjson.JSONEncodeError:
        return json.dumps(content, default=str, separators=(",", ":")).encode()


log = logging.getLogger("creditnet.api")

PROBLEM_TYPE_BASE: Final = "https://creditnet.dev/problems/"


@dataclass(frozen=True, slots=True)
class ProblemKind:
    status: int
    title: str


PROBLEM_KINDS: Final[dict[str, ProblemKind]] = {
    "creditnet_error": ProblemKind(500, "CreditNet error"),
    "invalid_value": ProblemKind(422, "Invalid value"),
    "idempotency_key_invalid": ProblemKind(400, "Invalid idempotency key"),
    "not_found": ProblemKind(404, "Not found"),
    "conflict": ProblemKind(409, "Conflict"),
    "declined": ProblemKind(409, "Declined"),
    "report_refused": ProblemKind(409, "Report refused"),
    "quorum_not_reached": ProblemKind(409, "Quorum not reached"),
    "unauthenticated": ProblemKind(401, "Authentication required"),
    "forbidden": ProblemKind(403, "Forbidden"),
    "configuration": ProblemKind(500, "Configuration error"),
    "contract_build": ProblemKind(500, "Contract build failed"),
    "pii_vault": ProblemKind(500, "PII vault error"),
    "chain_unavailable": ProblemKind(503, "Chain unavailable"),
    "export_unavailable": ProblemKind(503, "CreditNet error"),
}
"""Status and title per error code: the only place an error meets HTTP."""

_KIND_CACHE: dict[tuple[type[CreditNetError], str], ProblemKind] = {}


def problem_kind(error: CreditNetError) -> ProblemKind:
    """The status and title of `error` (see the module docstring)."""
    cache_key = (type(error), error.code)
    kind = _KIND_CACHE.get(cache_key)
    if kind is None:
        kind = _find_kind(type(error), error.code)
        if len(_KIND_CACHE) < 10_000:
            _KIND_CACHE[cache_key] = kind
    return kind


def _find_kind(cls: type[CreditNetError], code: str) -> ProblemKind:
    codes = [code] + [
        str(klass.__dict__["code"]) for klass in cls.__mro__ if "code" in klass.__dict__
    ]
    for candidate in codes:
        if candidate in PROBLEM_KINDS:
            return PROBLEM_KINDS[candidate]
    return PROBLEM_KINDS[CreditNetError.code]


def problem_status(error: CreditNetError) -> int:
    """The HTTP status `error` is answered with."""
    return problem_kind(error).status


def problem_body(error: CreditNetError) -> dict[str, Any]:
    """The RFC 9457 body of a domain error (without `instance`, which the handler adds)."""
    kind = problem_kind(error)
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + error.code,
        "title": kind.title,
        "status": kind.status,
        "detail": error.detail,
        "code": error.code,
    }
    if error.field is not None:
        body["field"] = error.field
    body.update(error.extra)
    return body


def problem_response(body: dict[str, Any], request: Request | None = None) -> ProblemResponse:
    if request is not None:
        body.setdefault("instance", request.url.path)
    headers = {}
    if body.get("status") == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return ProblemResponse(body, status_code=int(body["status"]), headers=headers)


def _field_of(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) if parts else str(loc[0]) if loc else "body"


async def _on_domain_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, CreditNetError)
    body = problem_body(exc)
    if body["status"] >= 500:
        log.error("domain error", extra={"code": exc.code})
    return problem_response(body, request)


async def _on_validation_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        # The offending input is left out on purpose: it may be personal data.
        {"field": _field_of(tuple(e.get("loc", ()))), "type": e.get("type"), "msg": e.get("msg")}
        for e in exc.errors()
    ]
    first = errors[0] if errors else {"field": "body", "msg": "invalid request"}
    status = 400 if first.get("type") == "json_invalid" else 422
    return problem_response(
        {
            "type": "https://creditnet.dev/problems/invalid_request",
            "title": "Invalid request",
            "status": status,
            "detail": f"{first['field']}: {first['msg']}",
            "code": "invalid_request",
            "field": first["field"],
            "errors": errors,
        },
        request,
    )


async def _on_http_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, StarletteHTTPException)
    return problem_response(
        {
            "type": "about:blank",
            "title": str(exc.detail),
            "status": exc.status_code,
            "detail": str(exc.detail),
            "code": f"http_{exc.status_code}",
        },
        request,
    )


def unexpected_error_body(path: str) -> dict[str, Any]:
    """The 500 answered for an error no handler expected (logged with its traceback:
    call this inside the `except`); the fast lanes answer it too."""
    log.exception("unhandled error", extra={"path": path})
    return {
        "type": "about:blank",
        "title": "Internal error",
        "status": 500,
        "detail": "the node failed to handle this request; see its logs by request id",
        "code": "internal",
        "instance": path,
    }


async def _on_unexpected(request: Request, exc: Exception) -> ProblemResponse:
    return problem_response(unexpected_error_body(request.url.path), request)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(CreditNetError, _on_domain_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
