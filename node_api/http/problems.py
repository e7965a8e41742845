"""RFC 9457 problem+json for every error the API returns."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from node_api.kernel.errors import CreditNetError

PROBLEM_MEDIA_TYPE = "application/problem+json"


class ProblemResponse(Response):
    """An RFC 9457 body rendered with orjson."""

    media_type = PROBLEM_MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


log = logging.getLogger("creditnet.api")


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
    if exc.status >= 500:
        log.error("domain error", extra={"code": exc.code})
    return problem_response(exc.to_problem(), request)


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


async def _on_unexpected(request: Request, exc: Exception) -> ProblemResponse:
    log.exception("unhandled error", extra={"path": request.url.path})
    return problem_response(
        {
            "type": "about:blank",
            "title": "Internal error",
            "status": 500,
            "detail": "the node failed to handle this request; see its logs by request id",
            "code": "internal",
        },
        request,
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(CreditNetError, _on_domain_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
