"""The plain-ASGI plumbing of a fast lane (outermost middleware serving one hot route
without the middleware stack, routing and FastAPI's request handling): the path the
router would match, a header, reading the body within a limit, and handing a request
the lane will not serve to the regular app with what it already read.

`routes.purchase_lane` and `routes.application_lane` use it.
"""

from __future__ import annotations

import time
from contextvars import Token
from dataclasses import dataclass

import orjson
from starlette.types import Message, Receive, Scope, Send

from node_api.http.middleware import REQUEST_ID_HEADER, record_access, request_id_of
from node_api.http.problems import PROBLEM_MEDIA_TYPE, dump_problem
from node_api.idempotency import REPLAYED_HEADER, StoredResponse
from node_api.kernel.logs import request_id_var

_LAST: Message = {"type": "http.request", "body": b"", "more_body": False}
_JSON_TYPE = b"application/json"
_PROBLEM_TYPE = PROBLEM_MEDIA_TYPE.encode()
_REPLAYED = REPLAYED_HEADER.lower().encode()


def route_path(scope: Scope) -> str:
    """The path below the app's root path (what Starlette's router matches)."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if not root_path or not path.startswith(root_path):
        return path
    if path == root_path:
        return ""
    if path[len(root_path)] == "/":
        return path[len(root_path) :]
    return path


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of a header (`name` in lower case), else None."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def is_json_media_type(content_type: str | None) -> bool:
    """Whether FastAPI reads a body of this type as JSON (`application/json` or
    `application/*+json`, parameters and case ignored)."""
    if not content_type:
        return False
    media_type = content_type.partition(";")[0].strip().lower()
    main, slash, sub = media_type.partition("/")
    return main == "application" and slash == "/" and (sub == "json" or sub.endswith("+json"))


@dataclass(frozen=True, slots=True)
class ReadBody:
    """What a lane read of a request: the body (if complete and within the limit) or how
    to hand the request back to the regular app (`receive` replays what was read)."""

    body: bytes | None
    receive: Receive


async def read_body(scope: Scope, receive: Receive, limit: int) -> ReadBody:
    """The whole body if its declared length and actual size are within `limit`; else
    `body` is None and `receive` gives the regular app the request as if unread."""
    length = header(scope, b"content-length")
    if length is None or not length.isdigit() or int(length) > limit:
        return ReadBody(None, receive)  # the regular path refuses or streams it
    chunks: list[bytes] = []
    size, more = 0, True
    while more and size <= limit:
        message = await receive()
        if message["type"] != "http.request":
            return ReadBody(None, replay_receive(chunks, message, receive))
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        more = message.get("more_body", False)
    raw = b"".join(chunks)
    if more or size > limit:
        return ReadBody(None, replay_receive([raw], None, receive))
    return ReadBody(raw, replay_receive([raw], _LAST, receive))


def replay_receive(chunks: list[bytes], last: Message | None, receive: Receive) -> Receive:
    """A `receive` that first gives back what was already read (the body so far, and
    `last` if it was not a body message, e.g. a disconnect), then the rest."""
    pending: list[Message] = []
    if chunks:
        body = b"".join(chunks)
        pending.append({"type": "http.request", "body": body, "more_body": last is None})
    if last is not None and last is not _LAST:
        pending.append(last)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


class LaneExchange:
    """One request a lane serves, as a context manager doing what the regular middleware
    does around every request: the caller's request id (or a new one) in the logging
    context, then the latency histogram and the access-log line under the route's
    template with the status answered (500 until `send_stored` answers it). A plain
    class, not a generator: it runs on every request of the hot lanes."""

    __slots__ = (
        "_log_requests",
        "_method",
        "_route",
        "_started",
        "_token",
        "headers",
        "request_id",
        "status",
    )

    def __init__(self, scope: Scope, method: str, route: str, *, log_requests: bool) -> None:
        self.request_id = request_id_of(scope)
        self.status = 500
        self.headers: list[tuple[bytes, bytes]] = []
        """Extra response headers (sent before the content headers)."""
        self._method, self._route, self._log_requests = method, route, log_requests
        self._started = 0.0
        self._token: Token[str | None] | None = None

    def __enter__(self) -> LaneExchange:
        self._started = time.perf_counter()
        self._token = request_id_var.set(self.request_id)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            request_id_var.reset(self._token)
        elapsed_s = time.perf_counter() - self._started
        record_access(
            self._method, self._route, self.status, elapsed_s, log_requests=self._log_requests
        )


async def send_stored(send: Send, exchange: LaneExchange, stored: StoredResponse) -> None:
    """Answer with a stored (or fresh) response as the app would: JSON, or problem+json
    for a 4xx/5xx, `Idempotent-Replayed` on a replay, the request id echoed."""
    status = stored.status_code
    problem = status >= 400
    content = dump_problem(stored.body) if problem else orjson.dumps(stored.body)
    headers = [
        *exchange.headers,
        (b"content-length", str(len(content)).encode()),
        (b"content-type", _PROBLEM_TYPE if problem else _JSON_TYPE),
    ]
    if stored.replayed:
        headers.append((_REPLAYED, b"true"))
    headers.append((REQUEST_ID_HEADER, exchange.request_id.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})
    exchange.status = status
