"""The ceiling's minimal authorization: each claimed request in arrival order spends its
line's available limit or is refused, and whatever is wrong about a request is answered
before the database is asked (no pool is opened in these tests)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from scripts.bench.ceiling_app import CeilingApp, _Pending, decide_batch

TOKEN = "secret-token"


def test_a_batch_spends_each_lines_limit_in_arrival_order() -> None:
    loop = asyncio.new_event_loop()
    try:
        batch = [
            _Pending(key, line_id, amount, loop.create_future())
            for key, line_id, amount in (("a", 1, 60), ("b", 1, 50), ("c", 1, 40), ("d", 9, 1))
        ]
    finally:
        loop.close()
    available = {1: 100}

    answers, journal = decide_batch(batch, available, [501, 502, 503, 504])

    assert journal == [(501, 1, 60), (502, 1, 40)]  # "b" would overdraw; "c" still fits
    assert available == {1: 0}
    assert answers["a"][0] == answers["c"][0] == 201
    assert orjson.loads(answers["c"][1]) == {
        "id": 502, "credit_line_id": 1, "amount_fen": 40, "available_fen": 0, "status": "authorized"
    }  # fmt: skip
    assert answers["b"][0] == 422 and orjson.loads(answers["b"][1])["field"] == "amount_fen"
    assert answers["d"][0] == 404


def _call(
    app: CeilingApp, method: str, path: str, headers: dict[str, str], body: bytes
) -> tuple[int, Any]:
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], orjson.loads(sent[1]["body"])


def test_bad_requests_are_answered_without_the_database() -> None:
    app = CeilingApp("postgresql://nowhere:1/none", TOKEN)  # no pool: nothing may reach it
    path = "/v1/credit-lines/7/purchases"
    good = {"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": "k1"}
    body = orjson.dumps({"amount_fen": 5})

    assert _call(app, "GET", "/v1/health", {}, b"") == (200, {"status": "ok"})
    assert _call(app, "POST", "/v1/credit-lines/0/purchases", good, body)[0] == 404
    assert _call(app, "POST", path, {**good, "Authorization": "Bearer wrong"}, body)[0] == 401
    assert _call(app, "POST", path, {"Authorization": f"Bearer {TOKEN}"}, body)[0] == 400
    for bad in (b"{", b"{}", b'{"amount_fen": 0}', b'{"amount_fen": 1.5}', b'{"amount_fen": true}'):
        status, problem = _call(app, "POST", path, good, bad)
        assert (status, problem["field"]) == (422, "amount_fen")
