"""Issue 15 item 2 on both databases, worked by hand: a payment made before the due date
that bounces after it re-ages the account exactly as if it had never arrived.

Product (`eod_product_data`): 500 ppm a day (15 fen a day on 30,000), 50 interest-free
days, bill day 5, due 20 days later (25th), 3 grace days, minimum 10% with a 5,000
floor, late fee 3,000, penalty 500 ppm a day. Lines opened 1 March 2025.
"""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from node_api.kernel.db import Database
from node_api.ledger.business_date import set_business_date
from node_api.lending.bill_tables import bill_outcome_table, bill_table
from node_api.lending.bill_views import fetch_delinquency
from node_api.lending.core.context import LendingCaches
from node_api.lending.eod import run_eod_through
from node_api.lending.repayments import reverse_repayment
from tests.integration.lending.eod_helpers import (
    balances,
    buy,
    check_ledger,
    eod_product_data,
    open_eod_line,
    pay,
)

OPENED = date(2025, 3, 1)
REVERSED_ON = date(2025, 4, 10)


@pytest.fixture
def caches() -> LendingCaches:
    return LendingCaches()


def _receivables(database: Database, line_id: int) -> dict[str, int]:
    return {
        kind: fen
        for kind, fen in balances(database, line_id).items()
        if kind.split("_")[0] in ("principal", "interest", "fee", "penalty")
    }


def _interest_fen(found: dict[str, int]) -> int:
    return sum(fen for kind, fen in found.items() if kind.startswith("interest_"))


def test_a_payment_that_bounces_after_the_due_date_re_ages_the_bill(
    database: Database, caches: LendingCaches
) -> None:
    # Two lines buy 30,000 on 1 March; the 5 March bill states 30,000, minimum 5,000.
    # Line A pays it all on 20 March (paid in full on 25 March: no interest, nothing past
    # due); the payment bounces on 10 April. Line B never pays.
    with database.engine.begin() as conn:
        set_business_date(conn, OPENED)
        line_a = open_eod_line(conn, caches, OPENED, customer_ref="a", data=eod_product_data())
        line_b = open_eod_line(conn, caches, OPENED, customer_ref="b")
    for line_id in (line_a, line_b):
        buy(database, caches, line_id, 30_000)
    run_eod_through(database, date(2025, 3, 19))
    payment = pay(database, caches, line_a, 30_000)
    run_eod_through(database, date(2025, 4, 9))
    assert _receivables(database, line_a) == {}
    with database.engine.begin() as conn:
        reversal = reverse_repayment(
            conn, caches, line_id=line_a, repayment_id=payment.repayment_id, as_of=None
        )
        (march_bill,) = conn.execute(
            select(bill_table.c.id).where(
                (bill_table.c.credit_line_id == line_a)
                & (bill_table.c.bill_date == date(2025, 3, 5))
            )
        ).scalars()
        outcome = conn.execute(
            select(bill_outcome_table).where(bill_outcome_table.c.bill_id == march_bill)
        ).one()
    assert reversal.reaged_bill_ids == (march_bill,)
    # Re-decided on 10 April (the last closed day is 9 April):
    # - paid 30,000 − 30,000 = 0: the 5,000 minimum is past due (from billed principal);
    # - interest-free period lost: 30,000 × 25 days (1–25 March) × 500 ppm = 375;
    # - revolving interest on the 30,000 restored, 26 March – 9 April: 15 days × 15 = 225;
    # - late fee on 29 March (25 + 3 grace + 1): 3,000;
    # - penalty: 15 days past due on 9 April (> 3 grace), 5,000 × 15 × 500 ppm = 37.5,
    #   rounded half-even once: 38.
    assert _receivables(database, line_a) == {
        "principal_billed": 25_000, "principal_past_due": 5_000,
        "interest_unbilled": 375 + 225, "fee_past_due": 3_000, "penalty_past_due": 38,
    }  # fmt: skip
    assert (outcome.paid_fen, outcome.paid_in_full) == (0, False)
    assert (outcome.moved_to_past_due_fen, outcome.retro_interest_fen) == (5_000, 375)
    with database.engine.connect() as conn:
        state = fetch_delinquency(conn, line_a)
    assert (state.days_past_due, state.bucket.value, state.revolving) == (15, "M1", True)
    # After 10 April's end of day, A owes what B (never paid) owes, component by
    # component: principal 30,000 (5,000 past due), fee 3,000, penalty 38 + 2 (2.5 on the
    # 10th: B's running 40 − 38; A's own 2.5 rounded half-even), interest 375 + 225 + 15.
    run_eod_through(database, REVERSED_ON)
    owed_a, owed_b = balances(database, line_a), balances(database, line_b)
    for found in (owed_a, owed_b):
        assert found["principal_past_due"] == 5_000
        assert found["principal_past_due"] + found["principal_billed"] == 30_000
        assert (found["fee_past_due"], found["penalty_past_due"]) == (3_000, 40)
        assert _interest_fen(found) == 615
    with database.engine.connect() as conn:
        states = [fetch_delinquency(conn, line_id) for line_id in (line_a, line_b)]
        check_ledger(conn)
    assert [(s.days_past_due, s.bucket.value) for s in states] == [(16, "M1"), (16, "M1")]


def test_a_payment_that_bounces_before_the_due_date_changes_no_decision(
    database: Database, caches: LendingCaches
) -> None:
    # Paid 20 March, bounced 22 March: the bill is not decided yet, so nothing is re-aged;
    # on 25 March the due date finds nothing paid and makes the 5,000 minimum past due.
    with database.engine.begin() as conn:
        set_business_date(conn, OPENED)
        line_id = open_eod_line(conn, caches, OPENED)
    buy(database, caches, line_id, 30_000)
    run_eod_through(database, date(2025, 3, 19))
    payment = pay(database, caches, line_id, 30_000)
    run_eod_through(database, date(2025, 3, 21))
    with database.engine.begin() as conn:
        reversal = reverse_repayment(
            conn, caches, line_id=line_id, repayment_id=payment.repayment_id, as_of=None
        )
    assert reversal.reaged_bill_ids == ()
    run_eod_through(database, date(2025, 3, 25))
    assert balances(database, line_id)["principal_past_due"] == 5_000
