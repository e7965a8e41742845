"""Issue 15 item 4's per-product options on both databases, worked by hand: payments in
the grace days treated as on time, and interest on the unpaid part only (未还部分计息).

Product (`eod_product_data`): 500 ppm a day, 50 interest-free days, bill day 5, due the
25th, 3 grace days, minimum 5,000. Each line buys 30,000 on 1 March, billed 5 March: the
interest-free period lost costs 30,000 × 25 days (1–25 March) × 500 ppm = 375 fen.
"""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from node_api.kernel.db import Database
from node_api.ledger.business_date import set_business_date
from node_api.lending.bill_tables import bill_outcome_table
from node_api.lending.core.context import LendingCaches
from node_api.lending.eod import run_eod_through
from tests.integration.lending.eod_helpers import (
    balances,
    buy,
    check_ledger,
    eod_product_data,
    open_eod_line,
    pay,
)

OPENED = date(2025, 3, 1)


@pytest.fixture
def caches() -> LendingCaches:
    return LendingCaches()


def _two_lines(database: Database, caches: LendingCaches, **option: bool) -> tuple[int, int]:
    """A line on a product with `option`, and one on the default product; 30,000 each."""
    with database.engine.begin() as conn:
        set_business_date(conn, OPENED)
        with_option = open_eod_line(
            conn, caches, OPENED, customer_ref="a", data=eod_product_data("OPT1", **option)
        )
        default = open_eod_line(conn, caches, OPENED, customer_ref="b")
    for line_id in (with_option, default):
        buy(database, caches, line_id, 30_000)
    return with_option, default


def _outcome(database: Database, line_id: int) -> tuple[bool, int, int, date]:
    with database.engine.connect() as conn:
        row = conn.execute(
            select(bill_outcome_table).where(bill_outcome_table.c.credit_line_id == line_id)
        ).one()
    return row.paid_in_full, row.retro_interest_fen, row.moved_to_past_due_fen, row.decided_on


def test_a_bill_paid_within_the_grace_days_is_on_time_when_the_product_says_so(
    database: Database, caches: LendingCaches
) -> None:
    # Both pay 30,000 on 27 March, two days after the due date, within the 3 grace days.
    # With the option the bill is decided at the end of 28 March: paid in full, no
    # interest, nothing past due. By default it was decided on 25 March: 375 of interest
    # and the 5,000 minimum past due (which the payment then settled).
    option, default = _two_lines(database, caches, grace_payments_on_time=True)
    run_eod_through(database, date(2025, 3, 26))
    for line_id in (option, default):
        pay(database, caches, line_id, 30_000)
    run_eod_through(database, date(2025, 3, 31))
    assert _outcome(database, option) == (True, 0, 0, date(2025, 3, 28))
    assert _outcome(database, default) == (False, 375, 5_000, date(2025, 3, 25))
    assert {k: v for k, v in balances(database, option).items() if k != "funding_payable"} == {}
    with database.engine.connect() as conn:
        check_ledger(conn)


def test_interest_on_the_unpaid_part_only_when_the_product_says_so(
    database: Database, caches: LendingCaches
) -> None:
    # Both pay 20,000 of the 30,000 by 20 March. Unpaid: 10,000 of 30,000, a third, so
    # with the option the lost interest-free period costs 375 × 10,000 / 30,000 = 125;
    # by default all 375.
    option, default = _two_lines(database, caches, interest_on_unpaid_only=True)
    run_eod_through(database, date(2025, 3, 19))
    for line_id in (option, default):
        pay(database, caches, line_id, 20_000)
    run_eod_through(database, date(2025, 3, 25))
    assert _outcome(database, option)[:2] == (False, 125)
    assert _outcome(database, default)[:2] == (False, 375)
