"""PostgreSQL's one-round-trip writer of a use batch (`ledger/use_batch.py`, migration
0016) refuses what `post_batches` refuses, with the same error and before writing
anything, and books what it books when a batch moves accounts toward their floors (a
path random purchases never take: they move every floored account away from its floor).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection

from node_api.kernel.db import Database
from node_api.kernel.errors import CreditNetError, NotFoundError
from node_api.ledger.accounts import AccountType, line_account_code, node_account_code
from node_api.ledger.business_date import set_business_date
from node_api.ledger.postings import BatchDraft, FloorCrossedError, PostingLine, post_batches
from node_api.ledger.use_batch import UseBatchRows, write_use_batch
from node_api.lending.core.context import LendingCaches
from node_api.schema.customer_keys import customer_id_mismatches
from tests.db_fixtures import _truncate_all
from tests.integration.lending.helpers import OPENED_ON, check_books, open_line
from tests.integration.lending.test_purchases_db import purchase

CLEARING = node_account_code(AccountType.SETTLEMENT_CLEARING)


@pytest.fixture
def pg(pg_database_url: str) -> Iterator[Database]:
    database = Database(pg_database_url, pool_size=2)
    _truncate_all(database.engine)
    yield database
    database.dispose()


@pytest.fixture
def line_with_1000(pg: Database) -> int:
    """A line whose principal_unbilled holds 1,000 fen (floor 0)."""
    caches = LendingCaches()
    with pg.engine.begin() as conn:
        set_business_date(conn, OPENED_ON)
        line_id = open_line(conn, caches)
    assert purchase(pg, caches, line_id, 1_000, channel_id="pos").status_code == 201
    return line_id


def _give_back(line_id: int, key: str, amount_fen: int) -> BatchDraft:
    """A batch that takes `amount_fen` off the line's principal (toward its floor)."""
    principal = line_account_code(line_id, AccountType.PRINCIPAL_UNBILLED)
    lines = (PostingLine(principal, -amount_fen), PostingLine(CLEARING, amount_fen))
    return BatchDraft(
        key, "test_give_back", OPENED_ON, lines, credit_line_id=line_id, customer_id="cust-1"
    )


def _rows(line_id: int) -> UseBatchRows:
    """A purchase row and a stored response, to show they are not written either."""
    use = (10_000, line_id, "purchase", 1, "REV1", 1, "app", "m-1", "CNY", 5, 0, OPENED_ON)
    return UseBatchRows(
        uses=[use], usage=[], responses=[("t", "writer-key", 201, "{}")], releases=[]
    )


def _counts(conn: Connection) -> tuple[int, ...]:
    tables = ("purchase", "posting_batch", "posting", "settlement_event", "idempotency_response")
    return tuple(
        int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()) for table in tables
    )


def _refusal(action: str, conn: Connection, drafts: list[BatchDraft], line_id: int) -> Exception:
    with pytest.raises(CreditNetError) as raised:
        if action == "post_batches":
            post_batches(conn, drafts, LendingCaches().accounts)
        else:
            write_use_batch(conn, drafts, _rows(line_id))
    return raised.value


def _described(error: Exception) -> tuple[object, ...]:
    assert isinstance(error, CreditNetError)
    return type(error), error.code, error.detail, error.field, error.extra


@pytest.mark.parametrize(
    ("drafts_of", "expected"),
    [
        pytest.param(
            lambda line_id: [_give_back(line_id, "a", 600), _give_back(line_id, "b", 600)],
            FloorCrossedError,
            id="floor-crossed-by-two-batches-together",
        ),
        pytest.param(
            lambda line_id: [
                BatchDraft(
                    "c",
                    "test_unknown",
                    OPENED_ON,
                    (PostingLine("node:no_such_account", 5), PostingLine(CLEARING, -5)),
                )
            ],
            NotFoundError,
            id="unknown-account",
        ),
    ],
)
def test_the_writer_refuses_as_post_batches_does_and_writes_nothing(
    pg: Database, line_with_1000: int, drafts_of: object, expected: type[Exception]
) -> None:
    assert callable(drafts_of)
    drafts = drafts_of(line_with_1000)
    described = {}
    for action in ("post_batches", "write_use_batch"):
        with pg.engine.connect() as conn, conn.begin() as transaction:
            before = _counts(conn)
            error = _refusal(action, conn, drafts, line_with_1000)
            assert isinstance(error, expected)
            assert _counts(conn) == before
            described[action] = _described(error)
            transaction.rollback()
    assert described["write_use_batch"] == described["post_batches"]


def _booked(conn: Connection) -> list[tuple[object, ...]]:
    return [
        tuple(row)
        for row in conn.execute(
            text(
                "SELECT b.business_key, b.as_of, a.code, p.amount_fen, a.balance_fen"
                " FROM posting p JOIN posting_batch b ON b.id = p.batch_id"
                " JOIN ledger_account a ON a.id = p.account_id"
                " WHERE b.kind = 'test_give_back' ORDER BY p.id"
            )
        )
    ]


def test_a_batch_toward_a_floor_but_not_across_books_as_post_batches_does(
    pg: Database, line_with_1000: int
) -> None:
    drafts = [_give_back(line_with_1000, "a", 600), _give_back(line_with_1000, "b", 400)]
    booked = {}
    for action in ("post_batches", "write_use_batch"):
        with pg.engine.connect() as conn, conn.begin() as transaction:
            if action == "post_batches":
                post_batches(conn, drafts, LendingCaches().accounts)
            else:
                write_use_batch(conn, drafts, UseBatchRows([], [], [], []))
            booked[action] = _booked(conn)
            transaction.rollback()
    assert booked["write_use_batch"] == booked["post_batches"]
    principal = line_account_code(line_with_1000, AccountType.PRINCIPAL_UNBILLED)
    assert [(key, code, fen) for key, _, code, fen, _ in booked["post_batches"]] == [
        ("a", principal, -600),
        ("a", CLEARING, 600),
        ("b", principal, -400),
        ("b", CLEARING, 400),
    ]
    assert {row[1] for row in booked["post_batches"]} == {date(2025, 3, 1)}
    with pg.engine.connect() as conn:
        check_books(conn, [line_with_1000])


def test_a_caller_of_the_previous_release_still_gets_every_row_its_customer(
    pg: Database, line_with_1000: int
) -> None:
    """Migration 0019 replaced the writer: a node of the previous release (mid-roll) sends
    its document without customers, and the function reads each line's own."""
    line_id = line_with_1000
    principal = line_account_code(line_id, AccountType.PRINCIPAL_UNBILLED)
    day = OPENED_ON.isoformat()
    old_document = {
        "uses": [[20_000, line_id, "purchase", 1, "REV1", 1, "app", "m-1", "CNY", 5, 0, day]],
        "usage": [],
        "responses": [],
        "releases": [],
        "batches": [["old-release:1", "purchase", day, line_id]],
        "postings": [[0, principal, 5], [0, CLEARING, -5]],
        "events": [[0, "merchant_payable", 5, None, "m-1", "REV1", 1]],
    }
    with pg.engine.begin() as conn:
        answer = conn.execute(
            text("SELECT creditnet_use_batch_write(:doc)"),
            {"doc": orjson.dumps(old_document).decode()},
        ).scalar_one()
    assert answer == "{}"
    with pg.engine.connect() as conn:
        written = conn.execute(
            text(
                "SELECT (SELECT customer_id FROM purchase WHERE id = 20000), b.customer_id, "
                "(SELECT array_agg(DISTINCT customer_id) FROM posting WHERE batch_id = b.id), "
                "(SELECT array_agg(DISTINCT customer_id) FROM settlement_event "
                "WHERE batch_id = b.id) FROM posting_batch b WHERE b.business_key = 'old-release:1'"
            )
        ).one()
        assert tuple(written) == ("cust-1", "cust-1", ["cust-1"], ["cust-1"])
        assert customer_id_mismatches(conn) == {}
