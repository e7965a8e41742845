"""End of day's funding step: the funders' shares of a day's uses, once a line and day."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from node_api.kernel.db import Database
from node_api.ledger.accounts import funding_payable_code
from node_api.ledger.business_date import set_business_date
from node_api.ledger.schema import posting_batch_table, settlement_event_table
from node_api.lending.core.context import LendingCaches, LendingPolicy
from node_api.lending.core.entries import compute_funded_split
from node_api.lending.eod import run_eod
from node_api.lending.eod.context import EodContext, new_eod_caches
from node_api.lending.eod.step_fund import list_funding_lines, run_funding_batch
from tests.integration.lending.eod_helpers import (
    buy,
    check_ledger,
    node_balance,
    open_eod_line,
    pay,
)

OPENED = date(2025, 3, 1)


@pytest.fixture
def line_id(database: Database, caches: LendingCaches) -> int:
    with database.engine.begin() as conn:
        set_business_date(conn, OPENED)
        return open_eod_line(conn, caches, OPENED)


def _payables(database: Database, line_id: int) -> dict[str, int]:
    return {
        partner: -node_balance(database, funding_payable_code(line_id, "BILL1", partner))
        for partner in ("bank-a", "lender")
    }


def _funding_events(database: Database, line_id: int) -> list[tuple[str, str, int, date]]:
    events, batches = settlement_event_table, posting_batch_table
    with database.engine.connect() as conn:
        rows = conn.execute(
            select(
                batches.c.business_key, events.c.partner_ref, events.c.amount_fen, events.c.as_of
            )
            .join(batches, batches.c.id == events.c.batch_id)
            .where((events.c.kind == "funding_share") & (events.c.credit_line_id == line_id))
            .order_by(events.c.id)
        ).all()
    return [(str(key), str(ref), int(fen), day) for key, ref, fen, day in rows]


def test_a_days_uses_are_funded_once_by_end_of_day_with_the_split_of_their_total(
    database: Database, caches: LendingCaches, line_id: int
) -> None:
    for amount_fen in (10_001, 10_001, 10_001):  # 7,000.7 + 3,000.3 each
        buy(database, caches, line_id, amount_fen)
    assert _payables(database, line_id) == {"bank-a": 0, "lender": 0}
    assert _funding_events(database, line_id) == []

    run_eod(database, OPENED)
    # The split of the day's 30,003, posted once: the three per-use changes the hot path
    # posted before (7,001 / 3,000, 7,000 / 3,001, 7,001 / 3,000) add up to the same.
    with database.engine.connect() as conn:
        split = caches.products.get(conn, "BILL1", 1).funding_split  # 70 % bank-a, 30 % lender
    splits = [compute_funded_split(uses * 10_001, split) for uses in range(4)]
    steps = [
        {p: after[p] - before[p] for p in after} for before, after in itertools.pairwise(splits)
    ]
    assert [step["bank-a"] for step in steps] == [7_001, 7_000, 7_001]
    assert splits[-1] == {"bank-a": 21_002, "lender": 9_001}
    assert _payables(database, line_id) == {"bank-a": 21_002, "lender": 9_001}
    key = f"eod:{OPENED.isoformat()}:fund:{line_id}"
    assert _funding_events(database, line_id) == [
        (key, "bank-a", 21_002, OPENED), (key, "lender", 9_001, OPENED),
    ]  # fmt: skip
    with database.engine.connect() as conn:
        check_ledger(conn)

    # The next day: nothing used, nothing to fund; the step run again posts nothing.
    run_eod(database, OPENED + timedelta(days=1))
    with database.engine.begin() as conn:
        run_funding_batch(conn, EodContext(caches=caches), OPENED, [line_id])
    assert len(_funding_events(database, line_id)) == 2


def test_a_repayment_funds_the_days_uses_so_far_and_end_of_day_adds_only_later_ones(
    database: Database, caches: LendingCaches, line_id: int
) -> None:
    buy(database, caches, line_id, 10_000)
    pay(database, caches, line_id, 4_000)  # funding_adjustment: target of 6,000 open
    assert _payables(database, line_id) == {"bank-a": 4_200, "lender": 1_800}
    buy(database, caches, line_id, 1_000)
    run_eod(database, OPENED)
    assert _payables(database, line_id) == {"bank-a": 4_900, "lender": 2_100}
    events = [
        (ref, fen) for key, ref, fen, _ in _funding_events(database, line_id) if "fund" in key
    ]
    assert events == [("bank-a", 700), ("lender", 300)]
    with database.engine.connect() as conn:
        check_ledger(conn)


def test_candidates_are_the_lines_used_within_the_back_dating_window_and_a_day(
    database: Database, caches: LendingCaches, line_id: int
) -> None:
    with database.engine.begin() as conn:
        other = open_eod_line(conn, caches, OPENED, customer_ref="cust-2")
        set_business_date(conn, OPENED + timedelta(days=5))
    buy(database, caches, line_id, 1_000, as_of=OPENED + timedelta(days=5))
    with database.engine.begin() as conn:
        set_business_date(conn, OPENED + timedelta(days=6))
    buy(database, caches, other, 1_000, as_of=OPENED + timedelta(days=6))
    day = OPENED + timedelta(days=6)
    with database.engine.connect() as conn:
        plain = EodContext(caches=new_eod_caches(LendingPolicy(backdate_window_days=0)))
        # A batch may commit the day before just after end of day listed its lines: the
        # day before is always looked at.
        assert list_funding_lines(conn, plain, day, 0) == [line_id, other]
        assert list_funding_lines(conn, plain, day + timedelta(days=1), 0) == [other]
        assert list_funding_lines(conn, plain, day, line_id) == [other]
        wide = EodContext(caches=new_eod_caches(LendingPolicy(backdate_window_days=2)))
        assert list_funding_lines(conn, wide, day + timedelta(days=2), 0) == [line_id, other]
        assert list_funding_lines(conn, wide, day + timedelta(days=3), 0) == [other]


def test_a_use_dated_into_a_funded_day_is_funded_by_the_next_days_run(
    database: Database, caches: LendingCaches, line_id: int
) -> None:
    """A date's batch is posted once: a use dated back into a date whose funding batch
    the line already has waits for the next date's run (never a second batch, and never
    a conflict that stops end of day)."""
    buy(database, caches, line_id, 10_000)
    with database.engine.begin() as conn:
        run_funding_batch(conn, EodContext(caches=caches), OPENED, [line_id])
    buy(database, caches, line_id, 1_000)  # dated OPENED too
    with database.engine.begin() as conn:
        result = run_funding_batch(conn, EodContext(caches=caches), OPENED, [line_id])
    assert (result.lines, result.batches) == (1, 0)
    assert _payables(database, line_id) == {"bank-a": 7_000, "lender": 3_000}
    run_eod(database, OPENED)
    with database.engine.begin() as conn:
        set_business_date(conn, OPENED + timedelta(days=1))
    run_eod(database, OPENED + timedelta(days=1))
    assert _payables(database, line_id) == {"bank-a": 7_700, "lender": 3_300}
    days = [day for *_, day in _funding_events(database, line_id)]
    assert days == [OPENED, OPENED, OPENED + timedelta(days=1), OPENED + timedelta(days=1)]
    with database.engine.connect() as conn:
        check_ledger(conn)
