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
from node_api.lending.eod.step_charge_off import allowance_lines
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
PENALTY_INCOME = node_account_code(AccountType.PENALTY_INCOME)
CONTRA = node_account_code(AccountType.SUSPENDED_INTEREST_CONTRA)


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
    # non-accrual. Owed: principal 30,000; interest 375 + 10 days × 15 = 525; late fee
    # 3,000 (29 March); penalty on the 5,000 past due: the 4-day run on 29 March (10) and
    # 6 days of 2.5, carried (25 in all). Entering non-accrual, the 525 of interest and
    # 25 of penalty accrued and unpaid leave the books: income reversed (525 → 0, 25 → 0),
    # the memo holds 550. Provision on what stays on the books: 30,000 + 3,000 = 33,000;
    # 2% = 660.
    run_eod_through(database, date(2025, 4, 4))
    assert _state(database, line_id) == ("special_mention", date(2025, 4, 4), 660)
    assert -node_balance(database, INTEREST_INCOME) == 0
    assert -node_balance(database, PENALTY_INCOME) == 0
    assert balances(database, line_id) == {
        "principal_past_due": 5_000, "principal_billed": 25_000, "fee_past_due": 3_000,
        "interest_suspended": 550, "funding_payable": 30_000,
    }  # fmt: skip
    assert node_balance(database, CONTRA) == -550
    # 5 April, 11 days past due: substandard, 25% of 33,000 = 8,250 exactly. The day's
    # interest (15) and penalty (27.5 running → 28: 3) are suspended too: memo 568.
    run_eod_through(database, date(2025, 4, 5))
    assert _state(database, line_id) == ("substandard", date(2025, 4, 4), 8_250)
    assert node_balance(database, ALLOWANCE) == -8_250
    owed = balances(database, line_id)
    assert owed["interest_suspended"] == 568
    assert -node_balance(database, INTEREST_INCOME) == 0
    receivables_fen = sum(
        fen for kind, fen in owed.items() if kind.split("_")[0] in ("principal", "interest",
                                                                    "fee", "penalty")
        and kind != "interest_suspended"
    )  # fmt: skip
    assert receivables_fen == 33_000
    # 6 April: 40,000 paid. 33,000 settles the books, 568 collects the suspended interest
    # and penalty (recognized as interest income: 568), 40,000 − 33,000 − 568 = 6,432 is
    # customer credit. That day the line is current: normal, accruing again, its
    # provision (receivables 0) released.
    with database.engine.begin() as conn:
        set_business_date(conn, date(2025, 4, 6))
    assert pay(database, caches, line_id, 40_000).customer_credit_fen == 6_432
    assert -node_balance(database, INTEREST_INCOME) == 568
    assert node_balance(database, CONTRA) == 0
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


def test_a_charge_off_uses_the_allowance_and_expenses_only_the_shortfall(
    database: Database, caches: LendingCaches
) -> None:
    # No interest, penalty or late fee, so the receivables are the 30,000 of principal
    # alone. Due 25 March; doubtful (50%) from 21 days past due, loss only from 40, charged
    # off after 35 days: on 30 April (36 days) while doubtful.
    data = eod_product_data(
        "CLASS2",
        interest={"method": "daily_ppm", "rate": 0, "day_count": "ACT/365"},
        penalty_rate_ppm_per_day=0,
        fees={"late_fee_fixed_fen": 0},
        delinquency={
            "charge_off_days": 35,
            "classification": {"special_mention_days": 1, "substandard_days": 11,
                               "doubtful_days": 21, "loss_days": 40},
        },
    )  # fmt: skip
    with database.engine.begin() as conn:
        set_business_date(conn, OPENED)
        line_id = open_eod_line(conn, caches, OPENED, data=data)
    buy(database, caches, line_id, 30_000)
    # 29 April, 35 days past due: doubtful, 50% of 30,000 = 15,000 provided.
    run_eod_through(database, date(2025, 4, 29))
    assert _state(database, line_id) == ("doubtful", None, 15_000)
    assert (node_balance(database, ALLOWANCE), node_balance(database, EXPENSE)) == (
        -15_000,
        15_000,
    )
    # 30 April: W = 30,000 written off against P = 15,000 of allowance; the shortfall
    # 30,000 − 15,000 = 15,000 is the day's provision expense (15,000 + 15,000 = 30,000 in
    # all, the loss), nothing is released. The node's allowance is credited the shortfall
    # (−15,000 − 15,000 = −30,000) and the line's written_off (the allowance it used) is
    # 30,000: −30,000 + 30,000 = 0 left for this line.
    run_eod_through(database, date(2025, 4, 30))
    assert _state(database, line_id) == ("loss", None, 0)
    assert (node_balance(database, ALLOWANCE), node_balance(database, EXPENSE)) == (
        -30_000,
        30_000,
    )
    assert balances(database, line_id) == {"written_off": 30_000}
    with database.engine.connect() as conn:
        check_ledger(conn)


def test_a_charge_off_below_the_provision_releases_the_excess() -> None:
    # W = 10,000 written off, P = 12,000 provided: 2,000 released (allowance debited,
    # expense credited); W = P posts nothing.
    assert [(line.account_code, line.amount_fen) for line in allowance_lines(10_000, 12_000)] == [
        (EXPENSE, -2_000),
        (ALLOWANCE, 2_000),
    ]
    assert allowance_lines(5_000, 5_000) == []
