"""The event stream: every business fact the books hold reaches JetStream once, in the
versioned schema, without personal data, across a crash between the publish
acknowledgements and the cursor write; a missing id holds the cursor until it is
waited out."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa

from node_api.events.jetstream import EventStreamUnavailable, JetStreamSink
from node_api.events.publisher import HOOK_AFTER_PUBLISH, EventPublisher, PublisherConfig
from node_api.events.schema import SCHEMA_NAME, BusinessEvent, EventType
from node_api.kernel.db import Database
from node_api.ledger.schema import posting_batch_table, posting_table, product_version_table
from node_api.lending.bill_tables import bill_table
from node_api.lending.core.context import LendingCaches
from node_api.lending.eod.tables import eod_run_table, line_delinquency_table
from node_api.lending.lines import credit_line_table
from oracles.tables import EVENT_TABLE
from tests.integration.lending.eod_helpers import open_eod_line
from tests.integration.runtime.conftest import OwnStream
from tests.unit.oracles.oracle_helpers import enqueue_all, make_opening

PROJECT_ROOT = Path(__file__).resolve().parents[3]
AS_OF = date(2026, 1, 5)
BATCH_KINDS = (
    ("purchase", EventType.PURCHASE_AUTHORIZED),
    ("eod_accrue", None),
    ("purchase_refund", EventType.PURCHASE_REFUNDED),
    ("repayment", EventType.REPAYMENT_POSTED),
    ("repayment_reversal", EventType.REPAYMENT_REVERSED),
    ("cash_drawdown", EventType.DRAWDOWN_POSTED),
    ("eod_charge_off", EventType.LINE_CHARGED_OFF),
)
CHAIN_EVENTS = (
    ("CycleProposed", {"cycleId": 120260105, "entriesRoot": "0x" + "11" * 32, "entryCount": 4}),
    ("CycleFinalized", {"cycleId": 120260105, "entriesRoot": "0x" + "11" * 32}),
    ("CycleClaimed", {"cycleId": 120260105, "partnerId": 2, "amountFen": 700}),
    ("CycleFullyFunded", {"cycleId": 120260105, "totalDueFen": 1_200}),
)


class ListSink:
    """Collects what would be published (for tests without NATS)."""

    def __init__(self) -> None:
        self.events: list[BusinessEvent] = []

    def publish(self, events: Sequence[BusinessEvent]) -> None:
        self.events.extend(events)


def _seed(database: Database, batches: int = 70, openings: int = 25) -> set[str]:
    """Ledger batches of every kind, agreement openings and chain events; the ids of the
    events they make."""
    expected: set[str] = set()
    with database.engine.begin() as conn:
        for number in range(1, batches + 1):
            kind, event_type = BATCH_KINDS[number % len(BATCH_KINDS)]
            _insert_batch(conn, number, kind, line=_line_of(number))
            conn.execute(
                sa.insert(posting_table),
                [
                    {
                        "batch_id": number,
                        "account_id": 1,
                        "amount_fen": 100 * number,
                        "as_of": AS_OF,
                        "customer_id": f"cust-{number % 5 + 1}",
                    },
                    {
                        "batch_id": number,
                        "account_id": 2,
                        "amount_fen": -100 * number,
                        "as_of": AS_OF,
                        "customer_id": f"cust-{number % 5 + 1}",
                    },
                ],
            )
            if event_type is not None:
                expected.add(f"batch:{number}")
        for number, (name, args) in enumerate(CHAIN_EVENTS):
            conn.execute(
                sa.insert(EVENT_TABLE).values(
                    block_number=10 + number,
                    block_hash="0x" + f"{number:064x}",
                    log_index=0,
                    tx_hash="0x" + f"{number + 100:064x}",
                    contract="ClearingHouse",
                    event=name,
                    subject=f"cycle:{args['cycleId']}",
                    args=args,
                )
            )
    expected |= {"cycle.proposed:120260105", "cycle.finalized:120260105", "cycle.funded:120260105"}
    messages = [make_opening(n) for n in range(openings)]
    enqueue_all(database, messages)
    expected |= {f"agreement.opened:0x{m.agreement_id.hex()}" for m in messages}
    return expected


def _batch_ids(sink: ListSink) -> list[str]:
    return [event.id for event in sink.events if event.id.startswith("batch:")]


def _sink(stream: OwnStream) -> JetStreamSink:
    return JetStreamSink(stream.url, stream.name, stream.prefix)


def test_every_fact_is_published_once_in_the_versioned_schema(
    database: Database, test_stream: OwnStream
) -> None:
    expected = _seed(database)
    sink = _sink(test_stream)
    publisher = EventPublisher(database, sink, PublisherConfig(page_size=16))
    publisher.run_until_idle(timeout_s=30)
    sink.close()

    messages = test_stream.consume_all()
    ids = [document["id"] for _subject, document, _headers in messages]
    assert sorted(ids) == sorted(expected)
    assert publisher.published == len(expected)
    for subject, document, headers in messages:
        assert document["schema"] == SCHEMA_NAME
        assert subject == f"{test_stream.prefix}.{document['type']}"
        assert headers["Nats-Msg-Id"] == document["id"]
        assert "borrower_ref" not in document["data"] and "customer_ref" not in document["data"]
    by_id = {document["id"]: document for _subject, document, _headers in messages}
    assert "batch:8" not in by_id, "an accrual batch is not an event of schema 1"
    assert by_id["batch:7"]["type"] == EventType.PURCHASE_AUTHORIZED
    assert by_id["batch:7"]["data"]["posted_fen"] == 700
    assert by_id["batch:7"]["as_of"] == AS_OF.isoformat()
    assert by_id["cycle.funded:120260105"]["data"]["total_due_fen"] == 1_200
    assert by_id["cycle.funded:120260105"]["as_of"] == "2026-01-05"
    assert publisher.fetch_positions() == {"ledger": 70, "outbox": 25, "chain": 4}


def test_a_crash_after_the_publish_before_the_cursor_write_loses_and_duplicates_nothing(
    database: Database, test_stream: OwnStream
) -> None:
    expected = _seed(database)
    crashes = {"left": 3}

    def crash_after_publish(point: str) -> None:
        if point == HOOK_AFTER_PUBLISH and crashes["left"] > 0:
            crashes["left"] -= 1
            raise RuntimeError("killed between the acknowledgements and the cursor write")

    sink = _sink(test_stream)
    for _attempt in range(3):
        crashed = EventPublisher(
            database, sink, PublisherConfig(page_size=16), hook=crash_after_publish
        )
        with pytest.raises(RuntimeError, match="killed"):
            crashed.run_until_idle(timeout_s=30)
    restarted = EventPublisher(database, sink, PublisherConfig(page_size=16))
    restarted.run_until_idle(timeout_s=30)
    sink.close()

    ids = [document["id"] for _subject, document, _headers in test_stream.consume_all()]
    assert len(ids) == len(set(ids)) == len(expected) == test_stream.count()
    assert set(ids) == expected


def test_a_publisher_killed_mid_stream_resumes_without_loss_or_duplicates(
    database: Database, test_stream: OwnStream
) -> None:
    expected = _seed(database, batches=300, openings=100)
    env = dict(
        os.environ,
        CN_TEST_DB_URL=database.url,
        CN_TEST_NATS_URL=test_stream.url,
        CN_TEST_STREAM=test_stream.name,
        CN_TEST_PREFIX=test_stream.prefix,
    )
    for kill_after in (2, 5):
        killed = subprocess.run(
            [sys.executable, "-m", "tests.integration.runtime.publisher_child", str(kill_after)],
            cwd=PROJECT_ROOT,
            env=env,
            timeout=60,
            capture_output=True,
            check=False,
        )
        assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    sink = _sink(test_stream)
    EventPublisher(database, sink, PublisherConfig(page_size=16)).run_until_idle(timeout_s=30)
    sink.close()

    ids = [document["id"] for _subject, document, _headers in test_stream.consume_all()]
    assert len(ids) == len(set(ids)) == test_stream.count()
    assert set(ids) == expected


def test_a_missing_id_holds_the_cursor_while_a_transaction_may_still_commit_it(
    database: Database,
) -> None:
    _seed(database, batches=7, openings=0)
    with database.engine.begin() as conn:
        conn.execute(sa.delete(posting_batch_table).where(posting_batch_table.c.id == 4))
    sink = ListSink()
    publisher = EventPublisher(database, sink)
    if database.backend == "sqlite":
        # One writer at a time: a missing id is a deleted row, passed at once.
        publisher.run_until_idle(timeout_s=10)
        assert publisher.fetch_positions()["ledger"] == 7
        assert _batch_ids(sink) == ["batch:2", "batch:3", "batch:5", "batch:6", "batch:7"]
        return

    # Batch 4 is being written by a transaction that has not committed yet.
    with database.engine.connect() as writer:
        transaction = writer.begin()
        # the line (and customer) of batch 4's postings, which _seed left
        _insert_batch(writer, 4, "repayment", line=_line_of(4))
        publisher.run_until_idle(timeout_s=10)
        publisher.run_until_idle(timeout_s=10)
        assert publisher.fetch_positions()["ledger"] == 3
        assert _batch_ids(sink) == ["batch:2", "batch:3"]  # 1 is an accrual
        transaction.commit()
    publisher.run_until_idle(timeout_s=10)
    assert publisher.fetch_positions()["ledger"] == 7
    assert _batch_ids(sink) == [f"batch:{n}" for n in range(2, 8)], "in order, none skipped"

    # An id whose transaction rolled back never comes: passed once nothing older runs.
    with database.engine.connect() as writer:
        transaction = writer.begin()
        _insert_batch(writer, 8, "purchase")
        with database.engine.begin() as conn:
            _insert_batch(conn, 9, "purchase")
        publisher.run_until_idle(timeout_s=10)
        assert publisher.fetch_positions()["ledger"] == 7
        transaction.rollback()
    publisher.run_until_idle(timeout_s=10)
    assert publisher.fetch_positions()["ledger"] == 9
    assert _batch_ids(sink)[-1] == "batch:9"


def _line_of(number: int) -> int:
    """The line `_seed` gives batch `number`."""
    return number % 5 + 1


def _insert_batch(conn: sa.Connection, number: int, kind: str, line: int = 1) -> None:
    """Posting batch `number` of `line` (customer `cust-<line>`), as a test writes it by hand."""
    conn.execute(
        sa.insert(posting_batch_table).values(
            id=number,
            business_key=f"test:{number}",
            kind=kind,
            as_of=AS_OF,
            credit_line_id=line,
            customer_id=f"cust-{line}",
        )
    )


def test_an_unreachable_stream_is_reported_and_moves_no_cursor(database: Database) -> None:
    _seed(database, batches=3, openings=0)
    sink = JetStreamSink("nats://127.0.0.1:9", "CN_NOWHERE", "cnnowhere", timeout_s=0.5)
    publisher = EventPublisher(database, sink)
    with pytest.raises(EventStreamUnavailable):
        publisher.step()
    sink.close()
    assert publisher.fetch_positions() == {}


def test_the_sample_consumer_applies_each_event_once_and_resumes_where_it_stopped(
    database: Database, test_stream: OwnStream, tmp_path: Path
) -> None:
    expected = _seed(database, batches=20, openings=5)
    sink = _sink(test_stream)
    EventPublisher(database, sink).run_until_idle(timeout_s=30)
    sink.close()
    command = [
        sys.executable,
        "-m",
        "scripts.events_consumer",
        f"--url={test_stream.url}",
        f"--stream={test_stream.name}",
        f"--prefix={test_stream.prefix}",
        f"--state={tmp_path / 'consumer.db'}",
        "--durable=sample",
        "--exit-when-idle-s=1",
    ]

    def run() -> list[str]:
        done = subprocess.run(
            command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60, check=True
        )
        return [orjson.loads(line)["id"] for line in done.stdout.splitlines()]

    assert sorted(run()) == sorted(expected)
    assert run() == [], "a durable consumer resumes after what it acknowledged"


def _set_buckets(database: Database, as_of: date, buckets: dict[int, tuple[str, int]]) -> None:
    """End of day's result for `as_of`: each line's bucket and days past due, run done."""
    with database.engine.begin() as conn:
        for line_id, (bucket, days) in buckets.items():
            conn.execute(
                sa.delete(line_delinquency_table).where(
                    line_delinquency_table.c.credit_line_id == line_id
                )
            )
            conn.execute(
                sa.insert(line_delinquency_table).values(
                    credit_line_id=line_id,
                    customer_id=sa.select(credit_line_table.c.customer_ref)
                    .where(credit_line_table.c.id == line_id)
                    .scalar_subquery(),
                    as_of=as_of,
                    revolving=False,
                    days_past_due=days,
                    bucket=bucket,
                )
            )
        conn.execute(sa.insert(eod_run_table).values(as_of=as_of, status="done"))


def test_delinquency_changes_are_published_once_per_finished_end_of_day(
    database: Database,
) -> None:
    caches = LendingCaches()
    with database.engine.begin() as conn:
        lines = [open_eod_line(conn, caches, AS_OF, customer_ref=f"cust-{n}") for n in range(3)]
    first, second, third = lines
    sink = ListSink()
    crashes = {"left": 1}

    def crash_once(point: str) -> None:
        if point == HOOK_AFTER_PUBLISH and crashes["left"] and sink.events:
            crashes["left"] -= 1
            raise RuntimeError("killed between the acknowledgements and the bucket write")

    _set_buckets(database, date(2026, 2, 1), {first: ("M1", 3), second: ("M0", 0)})
    with pytest.raises(RuntimeError, match="killed"):
        EventPublisher(database, sink, hook=crash_once).run_until_idle(timeout_s=10)
    publisher = EventPublisher(database, sink)
    publisher.run_until_idle(timeout_s=10)
    _set_buckets(
        database, date(2026, 2, 2), {first: ("M2", 31), second: ("M0", 0), third: ("M1", 1)}
    )
    publisher.run_until_idle(timeout_s=10)
    publisher.run_until_idle(timeout_s=10)

    changes = {e.id: e.data for e in sink.events if e.type is EventType.DELINQUENCY_CHANGED}
    assert set(changes) == {
        f"delinquency:{first}:2026-02-01:M1",
        f"delinquency:{first}:2026-02-02:M2",
        f"delinquency:{third}:2026-02-02:M1",
    }, "a re-publication after the crash keeps its id; an unchanged line publishes nothing"
    assert changes[f"delinquency:{first}:2026-02-02:M2"] == {
        "credit_line_id": first,
        "bucket_from": "M1",
        "bucket": "M2",
        "days_past_due": 31,
    }
    assert publisher.fetch_positions()["delinquency"] == 20260202


def test_a_cut_bill_is_published_with_its_amounts(database: Database) -> None:
    caches = LendingCaches()
    with database.engine.begin() as conn:
        line_id = open_eod_line(conn, caches, AS_OF)
        product = conn.execute(sa.select(product_version_table).limit(1)).one()
        amounts = {c.name: 0 for c in bill_table.c if c.name.endswith("_fen")}
        conn.execute(
            sa.insert(bill_table).values(
                **amounts | {"statement_balance_fen": 120_000, "minimum_payment_fen": 12_000},
                credit_line_id=line_id,
                customer_id="cust-1",
                bill_date=date(2026, 2, 5),
                cycle_start=date(2026, 1, 5),
                due_date=date(2026, 2, 25),
                product_code=product.product_code,
                product_version=product.version,
                days_past_due=0,
                bucket="M0",
            )
        )
    sink = ListSink()
    EventPublisher(database, sink).run_until_idle(timeout_s=10)

    (bill,) = [e for e in sink.events if e.type is EventType.BILL_CUT]
    assert bill.as_of == date(2026, 2, 5)
    assert bill.data | {"bill_id": 0} == {
        "bill_id": 0,
        "credit_line_id": line_id,
        "due_date": "2026-02-25",
        "statement_balance_fen": 120_000,
        "minimum_payment_fen": 12_000,
        "total_balance_fen": 0,
        "days_past_due": 0,
        "bucket": "M0",
    }
    assert bill.id == f"bill:{bill.data['bill_id']}"
