"""Pure ASGI middleware: request ids, the access log with latency metrics, and a
body-size limit (cheap on the hot path). The fast lanes (`routes.purchase_lane`,
`routes.application_lane`), which run before them, use the same `request_id_of` and
`record_access`."""

from __future__ import annotations

import itertools
import logging
import os
import secrets
import time
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from node_api.http.metrics import UNMATCHED_ROUTE, observe_request
from node_api.kernel.logs import request_id_var, write_line

REQUEST_ID_HEADER = b"x-request-id"

ACCESS_LOGGER = "creditnet.access"
access_log = logging.getLogger(ACCESS_LOGGER)


def request_id_of(scope: Scope) -> str:
    """The caller's X-Request-ID if sane (1 to 64 ASCII bytes), else a new one."""
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER and 0 < len(value) <= 64 and value.isascii():
            return str(value.decode())
    return new_request_id()


class _RequestIds:
    """16 hex digits: this process's random prefix, then a counter. A request id ties log
    lines together, it is no secret: reading 8 random bytes from the kernel for each
    (as before) was ~3 % of a worker's busy time on the authorization path."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """A new prefix and count (also in a forked child, which must not repeat ours)."""
        self.prefix = secrets.token_hex(4)
        self.counter = itertools.count()

    def next(self) -> str:
        return f"{self.prefix}{next(self.counter) & 0xFFFFFFFF:08x}"


_REQUEST_IDS = _RequestIds()
os.register_at_fork(after_in_child=_REQUEST_IDS.reset)


def new_request_id() -> str:
    """A request id for a request that brought none."""
    return _REQUEST_IDS.next()


def record_access(
    method: str, route: str, status: int, elapsed_s: float, *, log_requests: bool
) -> None:
    """What every answered request leaves: its latency in the metrics and, if enabled,
    one access-log line (no query string, no client address, no body)."""
    observe_request(method, route, status, elapsed_s)
    if log_requests and access_log.isEnabledFor(logging.INFO):
        write_line(
            ACCESS_LOGGER,
            "request",
            {
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": round(elapsed_s * 1000, 2),
            },
        )


class RequestIdMiddleware:
    """Takes the caller's X-Request-ID (if sane) or makes one; echoes it on the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        token = request_id_var.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER, request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)


def route_template(scope: Scope) -> str:
    """The matched route's path template (ids stay `{placeholders}`), never the raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class AccessMiddleware:
    """One JSON access-log line per request (method, route template, status, duration;
    the request id comes with every log line; no query string, no client address, no
    body) and the request latency histogram of `node_api.http.metrics`."""

    def __init__(self, app: ASGIApp, *, log_requests: bool = True) -> None:
        self.app = app
        self.log_requests = log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            elapsed = time.perf_counter() - started
            method, route = str(scope["method"]), route_template(scope)
            record_access(method, route, status, elapsed, log_requests=self.log_requests)


class BodyLimitMiddleware:
    """Refuses bodies larger than `max_bytes` with 413 problem+json before the app reads them.

    `limits_by_path` raises (or lowers) the limit for exact paths: a registered model card
    (hundreds of trees) is far larger than any business request.
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int, limits_by_path: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.limits_by_path = limits_by_path or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits_by_path.get(scope.get("path", ""), self.max_bytes)
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await self._reject(scope, send, limit)
                return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _BodyTooLarge:
            await self._reject(scope, send, limit)

    async def _reject(self, scope: Scope, send: Send, limit: int) -> None:
        body: dict[str, Any] = {
            "type": "https://creditnet.dev/problems/body_too_large",
            "title": "Request body too large",
            "status": 413,
            "detail": f"the body exceeds {limit} bytes",
            "code": "body_too_large",
            "field": "body",
            "instance": scope.get("path", ""),
        }
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/problem+json")],
            }
        )
        await send({"type": "http.response.body", "body": orjson.dumps(body)})


class _BodyTooLarge(Exception):
    pass
