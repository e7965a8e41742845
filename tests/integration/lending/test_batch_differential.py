"""The two ways of writing a group-committed batch agree: the same random purchases and
drawdowns, batch after batch, through the statement path on SQLite and the database
functions on PostgreSQL (migration 0016) give the same responses and the same books.

Random batches mix new keys, keys repeated within a batch and across batches (with the
same body: a replay; with another body: a conflict), declines (over a limit at the
product, channel or group level, a closed or frozen line, an ineligible channel),
input errors (unknown line, wrong currency, zero amount, a date outside the back-dating
window: their keys are given back and may be claimed again), and several uses of one
line in one batch, which share its total, group, product and channel limits.

One thing legitimately differs and is normalized: ids. On PostgreSQL a batch reserves a
purchase id for every claimed request before deciding, so a refused one leaves a gap;
ids (in responses, stored responses and business keys) are compared by rank.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text
from sqlalchemy.engine import Connection

from node_api.http.renderers import render_use
from node_api.idempotency import KeyClaim, StoredResponse
from node_api.kernel.db import Database
from node_api.ledger.business_date import set_business_date
from node_api.lending.core.batch import run_use_batch, run_use_batch_statements
from node_api.lending.core.context import LendingCaches
from node_api.lending.core.decide import UseKind, UseRequest
from node_api.lending.line_limits import LineAction, change_line_status
from tests.db_fixtures import _truncate_all
from tests.integration.lending.helpers import OPENED_ON, check_books, open_line

TODAY = OPENED_ON + timedelta(days=3)
NO_LINE = 999
CHANNELS = ("app", "pos", "kiosk")  # kiosk is not eligible for REV1


@dataclass(frozen=True)
class Body:
    """What a request asks; its hash is the claim's request hash."""

    kind: UseKind
    line: int
    amount_fen: int
    channel_id: str
    currency: str = "CNY"
    days_back: int | None = None


@dataclass(frozen=True)
class Operation:
    scope: str
    key: int
    body: Body


@dataclass
class Backend:
    database: Database
    caches: LendingCaches
    line_ids: list[int]


bodies = st.builds(
    Body,
    kind=st.sampled_from([UseKind.PURCHASE, UseKind.PURCHASE, UseKind.CASH_DRAWDOWN]),
    line=st.sampled_from([0, 0, 0, 1, 1, 2, 3, 4]),
    amount_fen=st.one_of(
        st.integers(1, 12_000), st.sampled_from([0, 29_000, 30_001, 70_000, 100_001])
    ),
    channel_id=st.sampled_from(CHANNELS),
    currency=st.sampled_from(["CNY"] * 9 + ["USD"]),
    days_back=st.sampled_from([None, None, None, 0, 2, 40]),
)
operations = st.builds(
    Operation, scope=st.sampled_from(["s1", "s1", "s2"]), key=st.integers(0, 14), body=bodies
)
repeats = st.integers(0, 1_000)
"""An index into the operations sent so far: that operation again (same key and body:
a replay, or, within one batch, a duplicate answered with its leader's response)."""
batches = st.lists(
    st.lists(st.one_of(operations, repeats), min_size=1, max_size=8), min_size=1, max_size=6
)


def _resolve(batch_list: list[list[Operation | int]]) -> list[list[Operation]]:
    """The batches with every repeat replaced by the operation it names."""
    sent: list[Operation] = []
    resolved = []
    for batch in batch_list:
        operations_of_batch = []
        for item in batch:
            operation = item if isinstance(item, Operation) or not sent else sent[item % len(sent)]
            if isinstance(operation, int):
                continue  # a repeat before anything was sent
            sent.append(operation)
            operations_of_batch.append(operation)
        if operations_of_batch:
            resolved.append(operations_of_batch)
    return resolved


@pytest.fixture
def sqlite_path(sqlite_template: Path, tmp_path: Path) -> Path:
    return tmp_path / "differential.db"


def _fresh_sqlite(template: Path, path: Path) -> Database:
    shutil.copyfile(template, path)
    return Database(f"sqlite:///{path}")


def _seed(database: Database) -> Backend:
    """Lines 0 and 1 active (line 0 with a cash product and an app sub-limit), line 2
    closed, line 3 frozen; the business date three days after opening."""
    caches = LendingCaches()
    with database.engine.begin() as conn:
        set_business_date(conn, OPENED_ON)
        first = open_line(conn, caches, cash_fen=10_000, channel_limits={"app": 30_000})
        second = open_line(
            conn, caches, customer_ref="cust-2", total_fen=50_000, purchase_fen=40_000,
            product_fen=40_000,
        )  # fmt: skip
        closed = open_line(conn, caches, customer_ref="cust-3")
        frozen = open_line(conn, caches, customer_ref="cust-4")
        change_line_status(conn, closed, LineAction.CLOSE, OPENED_ON)
        change_line_status(conn, frozen, LineAction.FREEZE, OPENED_ON)
        set_business_date(conn, TODAY)
    return Backend(database, caches, [first, second, closed, frozen, NO_LINE])


def _request(backend: Backend, operation: Operation) -> UseRequest:
    body = operation.body
    as_of = None if body.days_back is None else TODAY - timedelta(days=body.days_back)
    return UseRequest(
        kind=body.kind,
        credit_line_id=backend.line_ids[body.line],
        amount_fen=body.amount_fen,
        currency=body.currency,
        channel_id=body.channel_id,
        claim=KeyClaim(operation.scope, f"key-{operation.key}", _hash(body)),
        merchant_id="m-1" if body.kind is UseKind.PURCHASE else None,
        as_of=as_of,
    )


def _run(backend: Backend, batch: list[Operation]) -> list[StoredResponse]:
    with backend.database.engine.begin() as conn:
        requests = [_request(backend, operation) for operation in batch]
        return run_use_batch(conn, backend.caches, requests, render_use)


def _hash(body: Body) -> str:
    return hashlib.sha256(repr(body).encode()).hexdigest()


_USE_KEY = re.compile(r"^(purchase|cash_drawdown):(\d+)$")


class Ranks:
    """Purchase ids by rank (ascending), so that two databases' ids compare."""

    def __init__(self, conn: Connection) -> None:
        ids = conn.execute(text("SELECT id FROM purchase ORDER BY id")).scalars().all()
        self.rank = {int(use_id): position for position, use_id in enumerate(ids)}

    def body(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("status") == "authorized":
            return {**body, "id": self.rank[int(body["id"])]}
        return body

    def key(self, business_key: str) -> str:
        match = _USE_KEY.fullmatch(business_key)
        assert match is not None, business_key
        return f"{match[1]}:#{self.rank[int(match[2])]}"


def _books(conn: Connection, ranks: Ranks) -> dict[str, Any]:
    """Everything the batches wrote, keyed by what does not depend on ids."""

    def rows(sql: str) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in conn.execute(text(sql))]

    batches = {
        int(batch_id): ranks.key(key)
        for batch_id, key in rows("SELECT id, business_key FROM posting_batch")
    }
    return {
        "balances": rows(
            "SELECT code, balance_fen FROM ledger_account WHERE balance_fen <> 0 ORDER BY code"
        ),
        "batches": [
            (ranks.key(key), kind, as_of, line)
            for key, kind, as_of, line, reverses in rows(
                "SELECT business_key, kind, as_of, credit_line_id, reverses_batch_id"
                " FROM posting_batch ORDER BY id"
            )
            if reverses is None
        ],
        "postings": [
            (batches[batch_id], code, amount_fen, as_of)
            for batch_id, code, amount_fen, as_of in rows(
                "SELECT p.batch_id, a.code, p.amount_fen, p.as_of FROM posting p"
                " JOIN ledger_account a ON a.id = p.account_id ORDER BY p.id"
            )
        ],
        "events": [
            (batches[row[0]], *row[1:])
            for row in rows(
                "SELECT batch_id, kind, as_of, credit_line_id, product_code, product_version,"
                " partner_ref, counterparty_ref, amount_fen FROM settlement_event ORDER BY id"
            )
        ],
        "purchases": rows(
            "SELECT p.credit_line_id, p.kind, n.path, p.product_code, p.product_version,"
            " p.channel_id, p.merchant_id, p.currency, p.amount_fen, p.fee_fen, p.refunded_fen,"
            " p.principal_open_fen, p.as_of FROM purchase p"
            " JOIN limit_node n ON n.id = p.product_node_id ORDER BY p.id"
        ),
        "usage": rows(
            "SELECT credit_line_id, path, used_fen FROM limit_node ORDER BY credit_line_id, path"
        ),
        "claims": rows(
            "SELECT scope, idempotency_key, request_hash FROM idempotency_record"
            " ORDER BY scope, idempotency_key"
        ),
        "stored": [
            (scope, key, status, ranks.body(_loads(body)))
            for scope, key, status, body in rows(
                "SELECT scope, idempotency_key, status_code, response_body"
                " FROM idempotency_response ORDER BY scope, idempotency_key"
            )
        ],
    }


def _loads(body: str) -> dict[str, Any]:
    import orjson

    value = orjson.loads(body)
    assert isinstance(value, dict)
    return value


def _answers(backend: Backend, responses: list[StoredResponse]) -> list[tuple[Any, ...]]:
    with backend.database.engine.connect() as conn:
        ranks = Ranks(conn)
    return [(r.status_code, r.replayed, ranks.body(dict(r.body))) for r in responses]


def _normalize_dates(books: dict[str, Any]) -> dict[str, Any]:
    """SQLite reads dates back as `date` through the table types, raw SQL as text."""

    def value(item: Any) -> Any:
        if isinstance(item, date):
            return item.isoformat()
        if isinstance(item, tuple):
            return tuple(value(part) for part in item)
        return item

    return {name: [value(row) for row in rows] for name, rows in books.items()}


@pytest.fixture
def pg(pg_database_url: str) -> Iterator[Database]:
    database = Database(pg_database_url, pool_size=2)
    yield database
    database.dispose()


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(batch_list=batches)
def test_sqlite_statements_and_postgresql_functions_answer_and_book_alike(
    batch_list: list[list[Operation | int]], sqlite_template: Path, sqlite_path: Path, pg: Database
) -> None:
    _truncate_all(pg.engine)
    lite = _seed(_fresh_sqlite(sqlite_template, sqlite_path))
    post = _seed(pg)
    try:
        assert lite.line_ids == post.line_ids
        answers: dict[str, list[tuple[Any, ...]]] = {"sqlite": [], "postgresql": []}
        for batch in _resolve(batch_list):
            answers["sqlite"] += _answers(lite, _run(lite, batch))
            answers["postgresql"] += _answers(post, _run(post, batch))
        assert answers["postgresql"] == answers["sqlite"]
        for status, replayed, body in answers["sqlite"]:
            event(f"{status} {body.get('code', '')}{' replayed' if replayed else ''}")
        books = {}
        for name, backend in (("sqlite", lite), ("postgresql", post)):
            with backend.database.engine.connect() as conn:
                books[name] = _normalize_dates(_books(conn, Ranks(conn)))
                check_books(conn, backend.line_ids[:4])
        assert books["postgresql"] == books["sqlite"]
    finally:
        lite.database.dispose()


def test_a_refused_request_leaves_a_gap_in_purchase_ids_on_postgresql_only(
    sqlite_template: Path, sqlite_path: Path, pg: Database
) -> None:
    """The one difference the comparison above normalizes, shown once."""
    _truncate_all(pg.engine)
    batch = [
        Operation("s1", 1, Body(UseKind.PURCHASE, 0, 100, "app")),
        Operation("s1", 2, Body(UseKind.PURCHASE, 2, 100, "app")),  # a closed line
        Operation("s1", 3, Body(UseKind.PURCHASE, 0, 100, "app")),
    ]
    after = [Operation("s1", 4, Body(UseKind.PURCHASE, 0, 100, "app"))]
    lite = _seed(_fresh_sqlite(sqlite_template, sqlite_path))
    try:
        on_sqlite = _run(lite, batch) + _run(lite, after)
    finally:
        lite.database.dispose()
    post = _seed(pg)
    on_postgresql = _run(post, batch) + _run(post, after)
    for responses in (on_sqlite, on_postgresql):
        assert [r.status_code for r in responses] == [201, 409, 201, 201]
    # The refused request's reserved id (3) is never used on PostgreSQL.
    assert [on_sqlite[i].body["id"] for i in (0, 2, 3)] == [1, 2, 3]
    assert [on_postgresql[i].body["id"] for i in (0, 2, 3)] == [1, 2, 4]


def test_the_statement_path_on_postgresql_books_as_the_functions_do(pg: Database) -> None:
    """Both writers on the same server: the old statements stay a working fallback."""
    _truncate_all(pg.engine)
    backend = _seed(pg)
    batch = [
        Operation("s1", 1, Body(UseKind.PURCHASE, 0, 5_000, "app")),
        Operation("s1", 2, Body(UseKind.CASH_DRAWDOWN, 0, 3_000, "app")),
        Operation("s1", 1, Body(UseKind.PURCHASE, 0, 5_000, "app")),
    ]
    with pg.engine.begin() as conn:
        first = run_use_batch(
            conn, backend.caches, [_request(backend, o) for o in batch], render_use
        )
    again = [Operation("s2", o.key, o.body) for o in batch]
    with pg.engine.begin() as conn:
        requests = [_request(backend, o) for o in again]
        second = run_use_batch_statements(conn, backend.caches, requests, render_use)
    assert [r.status_code for r in first] == [r.status_code for r in second] == [201, 201, 201]
    assert [r.replayed for r in second] == [False, False, True]
    with pg.engine.connect() as conn:
        books = conn.execute(
            select(text("kind, count(*)")).select_from(text("posting_batch")).group_by(text("kind"))
        ).all()
        assert sorted(tuple(row) for row in books) == [("cash_drawdown", 2), ("purchase", 2)]
        check_books(conn, backend.line_ids[:4])
