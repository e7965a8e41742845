"""Problem bodies serialize any integer; path ids are ASCII digits only; JSON log lines
carry no terminal escapes; the access/metrics middleware is cheap."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import pytest

from node_api.http.metrics import REQUEST_SECONDS, observe_request
from node_api.http.middleware import AccessMiddleware, route_template
from node_api.http.problems import ProblemResponse, dump_problem
from node_api.http.schemas import ID_MAX, parse_path_id
from node_api.kernel.logs import JsonFormatter, strip_escapes


def test_a_problem_body_with_an_integer_beyond_64_bits_serializes_exactly() -> None:
    body = {"status": 422, "computed_bps": 2**80, "nested": [{"n": -(2**70)}]}
    assert json.loads(dump_problem(body)) == body
    assert json.loads(ProblemResponse(body, status_code=422).body) == body


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", 1),
        ("4611686018427387904", ID_MAX),
        ("4611686018427387905", None),
        ("²", None),
        ("٣", None),
        ("１２", None),
        ("0", None),
        ("01", None),
        ("+5", None),
        (" 5", None),
        ("1_0", None),
        ("9" * 5000, None),
        ("", None),
    ],
)
def test_path_ids_are_ascii_digits_only(raw: str, expected: int | None) -> None:
    assert parse_path_id(raw) == expected


def _record(msg: str, **extra: Any) -> logging.LogRecord:
    record = logging.LogRecord("uvicorn.error", logging.INFO, "x", 1, msg, None, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_json_log_lines_carry_no_terminal_escapes() -> None:
    """Regression: uvicorn's `color_message` put ANSI codes inside the JSON lines."""
    record = _record(
        "Uvicorn running on \x1b[1mhttp://127.0.0.1:8000\x1b[0m",
        color_message="Uvicorn running on \x1b[1m%s\x1b[0m",
        note="\x1b[31mred\x1b[0m",
        big=2**70,
    )
    line = JsonFormatter().format(record)
    assert "\x1b" not in line and "\\u001b" not in line
    entry = json.loads(line)
    assert entry["msg"] == "Uvicorn running on http://127.0.0.1:8000"
    assert "color_message" not in entry
    assert entry["note"] == "red"
    assert entry["big"] == 2**70
    assert strip_escapes("plain") == "plain"


def test_route_labels_are_templates_never_raw_paths() -> None:
    class Route:
        path = "/v1/credit-lines/{credit_line_id}"

    assert route_template({"route": Route()}) == "/v1/credit-lines/{credit_line_id}"
    assert route_template({}) == "unmatched"


async def _tiny_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def _per_request_s(app: Any, n: int) -> float:
    scope = {"type": "http", "method": "POST", "path": "/x", "headers": []}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(_message: Any) -> None:
        return None

    async def run() -> float:
        started = time.perf_counter()
        for _ in range(n):
            await app(dict(scope), receive, send)
        return (time.perf_counter() - started) / n

    return asyncio.run(run())


def test_the_access_middleware_costs_microseconds_per_request() -> None:
    """The purchase hot path runs thousands of requests a second: the histogram and the
    access line together must stay far below its ~350 µs of CPU per authorization."""
    logging.getLogger("creditnet.access").disabled = True  # measure the formatting apart
    try:
        bare = _per_request_s(_tiny_app, 3000)
        measured = _per_request_s(AccessMiddleware(_tiny_app), 3000)
    finally:
        logging.getLogger("creditnet.access").disabled = False
    assert measured - bare < 50e-6, (bare, measured)
    observe_request("GET", "/probe", 200, 0.001)
    sample = REQUEST_SECONDS.labels("GET", "/probe", "200")
    assert sample is not None
