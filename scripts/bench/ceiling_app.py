"""The machine's ceiling for an authorization: the minimal one of ../shared/DESIGN.md's
hot paths ("asyncpg + in-server group commit", 6,281/s on the machine that table was
measured on), served the way the node serves its own, for `creditnet bench ceiling`.

A request is the node's purchase request (`POST /v1/credit-lines/{id}/purchases`, a
bearer token, an `Idempotency-Key`, a JSON body with `amount_fen`). Each worker group-
commits them as the node does (up to `MAX_BATCH_ITEMS`, waiting at most `MAX_WAIT_S`, one
batch in flight): one transaction of three statements on asyncpg claims the keys, locks
the lines in id order and reserves journal ids, then, after each amount is checked
against its line's limit, writes the lines' new usage, one journal row and two postings
per authorization and every response. A key seen before answers its stored response
(the request itself is not compared, as the node does).

Nothing else: no products, limit tree, fees, funding split, settlement events or
per-line accounts. The node's rate over this one's on the same machine is thus the
share of the machine's ceiling its business costs leave, a figure that stays
comparable between machines that differ in speed.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

import asyncpg
import orjson

from node_api.cli.workers import serve_factory_from_argv
from node_api.lending.core.service import MAX_BATCH_ITEMS, MAX_WAIT_S

DSN_ENV: Final = "CREDITNET_CEILING_DSN"
TOKEN_ENV: Final = "CREDITNET_CEILING_TOKEN"

SCHEMA: Final = (
    "CREATE TABLE ceiling_line (id bigint PRIMARY KEY, limit_fen bigint NOT NULL, "
    "used_fen bigint NOT NULL CHECK (used_fen BETWEEN 0 AND limit_fen))",
    "CREATE TABLE ceiling_claim (idempotency_key text PRIMARY KEY)",
    "CREATE TABLE ceiling_response (idempotency_key text PRIMARY KEY "
    "REFERENCES ceiling_claim, status_code int NOT NULL, body text NOT NULL)",
    "CREATE TABLE ceiling_journal (id bigserial PRIMARY KEY, "
    "line_id bigint NOT NULL REFERENCES ceiling_line, amount_fen bigint NOT NULL)",
    "CREATE TABLE ceiling_posting (id bigserial PRIMARY KEY, "
    "journal_id bigint NOT NULL REFERENCES ceiling_journal, account text NOT NULL, "
    "amount_fen bigint NOT NULL)",
)

_CLAIM: Final = (
    "WITH c AS (INSERT INTO ceiling_claim (idempotency_key) SELECT unnest($1::text[]) "
    "ON CONFLICT DO NOTHING RETURNING idempotency_key) SELECT array_agg(idempotency_key) FROM c"
)
_STORED: Final = (
    "SELECT c.idempotency_key, r.status_code, r.body FROM ceiling_claim c "
    "LEFT JOIN ceiling_response r USING (idempotency_key) "
    "WHERE c.idempotency_key = ANY($1::text[])"
)
_LOCK: Final = (
    "SELECT array_agg(id ORDER BY id), array_agg(limit_fen - used_fen ORDER BY id), "
    "(SELECT array_agg(nextval('ceiling_journal_id_seq')) FROM generate_series(1, $2::int)) "
    "FROM (SELECT id, limit_fen, used_fen FROM ceiling_line WHERE id = ANY($1::bigint[]) "
    "ORDER BY id FOR UPDATE) l"
)
_WRITE: Final = (
    "WITH u AS (UPDATE ceiling_line l SET used_fen = l.used_fen + v.amount_fen "
    " FROM unnest($1::bigint[], $2::bigint[]) AS v(id, amount_fen) "
    " WHERE l.id = v.id AND l.id = ANY($1::bigint[])), "
    "j AS (INSERT INTO ceiling_journal (id, line_id, amount_fen) "
    " SELECT * FROM unnest($3::bigint[], $4::bigint[], $5::bigint[])), "
    "p AS (INSERT INTO ceiling_posting (journal_id, account, amount_fen) "
    " SELECT j.id, a.account, a.sign * j.amount_fen "
    " FROM unnest($3::bigint[], $5::bigint[]) AS j(id, amount_fen) "
    " CROSS JOIN (VALUES ('receivable', 1), ('merchant_payable', -1)) AS a(account, sign)), "
    "r AS (INSERT INTO ceiling_response (idempotency_key, status_code, body) "
    " SELECT * FROM unnest($6::text[], $7::int[], $8::text[])) "
    "SELECT 1"
)
_PATH: Final = re.compile(r"/v1/credit-lines/([1-9][0-9]{0,17})/purchases")

Response = tuple[int, bytes]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]


@dataclass
class _Pending:
    key: str
    line_id: int
    amount_fen: int
    future: asyncio.Future[Response] = field(repr=False)


def _problem(status: int, title: str, field_name: str | None = None) -> Response:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if field_name is not None:
        body["field"] = field_name
    return status, orjson.dumps(body)


def decide_batch(
    batch: list[_Pending], available: dict[int, int], ids: list[int]
) -> tuple[dict[str, Response], list[tuple[int, int, int]]]:
    """Each claimed request's response, in arrival order, and the (journal id, line,
    amount) of each authorization; `available` (fen per locked line) is spent as
    amounts are authorized and `ids` are taken in order."""
    responses: dict[str, Response] = {}
    journal: list[tuple[int, int, int]] = []
    for item in batch:
        left = available.get(item.line_id)
        if left is None:
            responses[item.key] = _problem(404, "no such credit line")
        elif item.amount_fen > left:
            responses[item.key] = _problem(422, "over the line's available limit", "amount_fen")
        else:
            available[item.line_id] = left - item.amount_fen
            journal_id = ids[len(journal)]
            journal.append((journal_id, item.line_id, item.amount_fen))
            body = {
                "id": journal_id,
                "credit_line_id": item.line_id,
                "amount_fen": item.amount_fen,
                "available_fen": left - item.amount_fen,
                "status": "authorized",
            }
            responses[item.key] = (201, orjson.dumps(body))
    return responses, journal


class CeilingApp:
    """The ASGI app (see the module docstring)."""

    def __init__(self, dsn: str, token: str) -> None:
        self._dsn = dsn
        self._token = f"Bearer {token}".encode()
        self._pool: asyncpg.Pool | None = None
        self._pending: list[_Pending] = []
        self._in_flight = False
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        status, body = await self._answer(scope, receive)
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._pool = await asyncpg.create_pool(self._dsn, min_size=1, max_size=2)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._pool is not None:
                    await self._pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _answer(self, scope: dict[str, Any], receive: Receive) -> Response:
        if scope["method"] == "GET" and scope["path"] == "/v1/health":
            return 200, b'{"status":"ok"}'
        match = _PATH.fullmatch(scope["path"])
        if scope["method"] != "POST" or match is None:
            return _problem(404, "not found")
        headers = dict(scope["headers"])
        if not hmac.compare_digest(headers.get(b"authorization", b""), self._token):
            return _problem(401, "a valid bearer token is required", "Authorization")
        key = headers.get(b"idempotency-key", b"").decode("ascii", "replace")
        if not 0 < len(key) <= 128:
            return _problem(400, "an Idempotency-Key of 1 to 128 characters is required", "key")
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            amount = orjson.loads(body)["amount_fen"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return _problem(422, "amount_fen is required", "amount_fen")
        if type(amount) is not int or not 0 < amount <= 10**12:
            return _problem(422, "amount_fen must be a whole number of fen above 0", "amount_fen")
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(key, int(match.group(1)), amount, future))
        self._schedule()
        return await future

    def _schedule(self) -> None:
        if self._in_flight or not self._pending:
            return
        if len(self._pending) >= MAX_BATCH_ITEMS:
            self._dispatch()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(MAX_WAIT_S, self._dispatch)

    def _dispatch(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._in_flight or not self._pending:
            return
        batch = self._pending[:MAX_BATCH_ITEMS]
        del self._pending[:MAX_BATCH_ITEMS]
        self._in_flight = True
        task = asyncio.get_running_loop().create_task(self._execute(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _execute(self, batch: list[_Pending]) -> None:
        try:
            answers = await self._run(batch)
        except Exception as error:  # the batch's transaction rolled back: each request fails
            failed = _problem(503, f"try again ({type(error).__name__})")
            answers = {item.key: failed for item in batch}
        finally:
            self._in_flight = False
            self._schedule()
        for item in batch:
            if not item.future.done():
                item.future.set_result(answers[item.key])

    async def _run(self, batch: list[_Pending]) -> dict[str, Response]:
        assert self._pool is not None
        keys = sorted({item.key for item in batch})
        async with self._pool.acquire() as conn, conn.transaction():
            claimed = set(await conn.fetchval(_CLAIM, keys) or ())
            leaders: dict[str, _Pending] = {}
            for item in batch:
                if item.key in claimed:
                    leaders.setdefault(item.key, item)
            work = list(leaders.values())
            answers: dict[str, Response] = {}
            if work:
                lines, left, ids = await conn.fetchrow(
                    _LOCK, sorted({item.line_id for item in work}), len(work)
                )
                available = dict(zip(lines or (), left or (), strict=True))
                answers, journal = decide_batch(work, available, list(ids or ()))
                spent: dict[int, int] = {}
                for _, line_id, amount in journal:
                    spent[line_id] = spent.get(line_id, 0) + amount
                stored = list(answers.items())
                await conn.execute(
                    _WRITE,
                    list(spent),
                    list(spent.values()),
                    [row[0] for row in journal],
                    [row[1] for row in journal],
                    [row[2] for row in journal],
                    [key for key, _ in stored],
                    [status for _, (status, _) in stored],
                    [body.decode() for _, (_, body) in stored],
                )
            others = [key for key in keys if key not in claimed]
            if others:
                for key, status, body in await conn.fetch(_STORED, others):
                    answers[key] = (
                        _problem(409, "a request with this key is in progress", "key")
                        if status is None
                        else (status, body.encode())
                    )
        return answers


def create_app_from_env() -> CeilingApp:
    return CeilingApp(os.environ[DSN_ENV], os.environ[TOKEN_ENV])


def main() -> None:
    """`python -m scripts.bench.ceiling_app PORT WORKERS`, as the node's benchmarks run."""
    serve_factory_from_argv("scripts.bench.ceiling_app:create_app_from_env")


if __name__ == "__main__":
    main()
