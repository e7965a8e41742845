"""Issue 15 item 5 on both databases, worked by hand: five-tier classification with the
product's thresholds, non-accrual (interest and penalty suspended off balance sheet and
recognized when collected) and loan-loss provisions with their postings.

Product (`eod_product_data`): 500 ppm a day (15 fen a day on 30,000), 50 interest-free
days, bill day 5, due the 25th, 3 grace days, minimum 5,000, late fee 3,000, penalty
500 ppm a day; here classified special mention from 1 day past due, substandard from
11, doubtful from 21, loss from 31, non-accrual from 10, with the default provision
matrix (normal 1%, special mention 2%, substandard 25%, doubtful 50%, loss 100%).
"""

from __future__ import annotations

from datetime import date

import pytest

from node_api.kernel.db import Database
from node_api.ledger.accounts import AccountType, node_account_code
from node_api.ledger.business_date import set_business_date
from node_api.lending.core.context import LendingCaches
from node_api.lending.eod import run_eod_through
from node_api.lending.eod.state import fetch_line_states
from node_api.lending.eod.step_classify import compute_provision_fen
from tests.integration.lending.eod_helpers import (
    balances,
    buy,
    check_ledger,
    eod_product_data,
    node_balance,
    open_eod_line,
    pay,
)

OPENED = date(2025, 3, 1)
ALLOWANCE = node_account_code(AccountType.LOAN_LOSS_ALLOWANCE)
EXPENSE = node_account_code(AccountType.PROVISION_EXPENSE)
INTEREST_INCOME = node_account_code(AccountType.INTEREST_INCOME)


@pytest.fixture
def caches() -> LendingCaches:
    return LendingCaches()


def _state(database: Database, line_id: int) -> tuple[str, date | None, int]:
    with database.engine.connect() as conn:
        state = fetch_line_states(conn, [line_id])[line_id]
    return state.loan_class.value, state.non_accrual_since, state.provision_fen


def test_a_line_is_classified_provisioned_and_put_on_non_accrual_then_cured(
    database: Database, caches: LendingCaches
) -> None:
    data = eod_product_data(
        "CLASS1",
        delinquency={
            "charge_off_days": 35,
            "non_accrual_days": 10,
            "classification": {"special_mention_days": 1, "substandard_days": 11,
                               "doubtful_days": 21, "loss_days": 31},
        },
    )  # fmt: skip
    with database.engine.begin() as conn:
        set_business_date(conn, OPENED)
        line_id = open_eod_line(conn, caches, OPENED, data=data)
    # 30,000 bought 1 March, billed 5 March, nothing paid by 25 March: 5,000 past due and
    # the interest-free period lost: 30,000 × 25 days × 500 ppm = 375 of interest.
    buy(database, caches, line_id, 30_000)
    run_eod_through(database, date(2025, 3, 25))
    assert _state(database, line_id) == ("normal", None, 0)
    # 26 March, 1 day past due: special mention. Receivables 30,000 + 375 + 15 (the day's
    # interest) = 30,390; 2% = 607.8, rounded up: 608.
    run_eod_through(database, date(2025, 3, 26))
    assert _state(database, line_id) == ("special_mention", None, 608)
    assert (node_balance(database, ALLOWANCE), node_balance(database, EXPENSE)) == (-608, 608)
    # 4 April, 10 days past due: still special mention (substandard from 11) and now
    # non-accrual. Receivables: principal 30,000; interest 375 + 10 days × 15 = 525; late
    # fee 3,000 (29 March); penalty on the 5,000 past due: the 4-day run on 29 March (10)
    # and 6 days of 2.5, carried (25 in all). 33,550 × 2% = 671.
    run_eod_through(database, date(2025, 4, 4))
    assert _state(database, line_id) == ("special_mention", date(2025, 4, 4), 671)
    assert -node_balance(database, INTEREST_INCOME) == 525
    # 5 April, 11 days past due: substandard, 25% of 33,550 = 8,387.5, rounded up: 8,388.
    # The day's interest (15) and penalty (27.5 running → 28: 3) are suspended off the
    # books: income does not move, the line's memo holds 18.
    run_eod_through(database, date(2025, 4, 5))
    assert _state(database, line_id) == ("substandard", date(2025, 4, 4), 8_388)
    assert node_balance(database, ALLOWANCE) == -8_388
    owed = balances(database, line_id)
    assert owed["interest_suspended"] == 18
    assert -node_balance(database, INTEREST_INCOME) == 525
    receivables_fen = sum(
        fen for kind, fen in owed.items() if kind.split("_")[0] in ("principal", "interest",
                                                                    "fee", "penalty")
        and kind != "interest_suspended"
    )  # fmt: skip
    assert receivables_fen == 33_550
    # 6 April: 40,000 paid. 33,550 settles the books, 18 collects the suspended interest
    # (recognized as income: 525 + 18 = 543), 6,432 is customer credit. That day the
    # line is current: normal, accruing again, its provision (receivables 0) released.
    with database.engine.begin() as conn:
        set_business_date(conn, date(2025, 4, 6))
    assert pay(database, caches, line_id, 40_000).customer_credit_fen == 6_432
    assert -node_balance(database, INTEREST_INCOME) == 543
    run_eod_through(database, date(2025, 4, 6))
    assert _state(database, line_id) == ("normal", None, 0)
    assert (node_balance(database, ALLOWANCE), node_balance(database, EXPENSE)) == (0, 0)
    assert balances(database, line_id) == {"customer_credit": 6_432}
    with database.engine.connect() as conn:
        check_ledger(conn)


def test_the_provision_rounds_up_so_the_allowance_never_falls_short() -> None:
    # 33,550 × 2,500 bps = 8,387.5 → 8,388; exact amounts are not rounded.
    assert compute_provision_fen(33_550, 2_500) == 8_388
    assert compute_provision_fen(33_550, 200) == 671
    assert compute_provision_fen(0, 10_000) == 0
