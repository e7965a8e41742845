"""Installment plans through end of day on both databases: a bill merging purchases and
an installment, converting a bill, full early repayment and cancellation, with figures
computed by hand (plans of 3 months at 12% a year, i.e. 1% a month; see
`eod_product_data` for the rest of the product)."""

from __future__ import annotations

from datetime import date

import pytest

from node_api.kernel.db import Database
from node_api.kernel.errors import ConflictError
from node_api.ledger.accounts import AccountType, node_account_code
from node_api.ledger.business_date import set_business_date
from node_api.lending.bill_views import BillDetail, fetch_bill, fetch_bills
from node_api.lending.core.context import LendingCaches
from node_api.lending.eod import run_eod_through
from node_api.lending.installment_store import PlanView, fetch_plan, settle_prepaid_installments
from node_api.lending.installments import (
    cancel_plan,
    convert_bill,
    convert_purchase,
    repay_plan_early,
)
from node_api.lending.schedules import CancellationWindowClosedError
from tests.integration.lending.eod_helpers import (
    balances,
    buy,
    check_ledger,
    node_balance,
    open_eod_line,
    pay,
)

OPENED = date(2025, 3, 1)


@pytest.fixture
def caches() -> LendingCaches:
    return LendingCaches()


@pytest.fixture
def line_id(database: Database, caches: LendingCaches) -> int:
    with database.engine.begin() as conn:
        set_business_date(conn, OPENED)
        return open_eod_line(conn, caches, OPENED)


def _latest_bill(database: Database, line_id: int) -> BillDetail:
    with database.engine.connect() as conn:
        latest = fetch_bills(conn, line_id, 1)[0]
        return fetch_bill(conn, line_id, latest.id)


def _convert(database: Database, caches: LendingCaches, line_id: int, purchase_id: int) -> PlanView:
    with database.engine.begin() as conn:
        return convert_purchase(
            conn, caches, line_id=line_id, purchase_id=purchase_id, tenor_months=3
        )


def test_bill_merges_a_revolving_purchase_and_the_first_installment_of_a_plan(
    database: Database, caches: LendingCaches, line_id: int
) -> None:
    converted = buy(database, caches, line_id, 120_000)
    buy(database, caches, line_id, 30_000)
    plan = _convert(database, caches, line_id, converted)
    # 120,000 over 3 months at 1%: payment 40,802.65 → 40,803; installments
    # (39,603 + 1,200), (39,999 + 804), (40,398 + 404).
    assert [(i.principal_fen, i.interest_fen) for i in plan.installments] == [
        (39_603, 1_200), (39_999, 804), (40_398, 404)
    ]  # fmt: skip
    run_eod_through(database, date(2025, 3, 5))
    bill = _latest_bill(database, line_id)
    # Statement: revolving 30,000 + installment 39,603 + 1,200 = 70,803.
    # Minimum: 10% × 30,000 = 3,000 + the installment 40,803 = 43,803.
    assert (bill.statement_balance_fen, bill.minimum_payment_fen) == (70_803, 43_803)
    assert (bill.new_principal_fen, bill.installment_principal_fen) == (30_000, 39_603)
    # Still in the plan: 120,000 − 39,603 = 80,397; all owed = 70,803 + 80,397.
    assert (bill.plan_principal_fen, bill.total_balance_fen) == (80_397, 151_200)
    assert sorted((line.kind, line.amount_fen) for line in bill.lines) == [
        ("installment", 40_803), ("installment_conversion", -120_000),
        ("purchase", 30_000), ("purchase", 120_000),
    ]  # fmt: skip
    assert balances(database, line_id)["principal_unbilled"] == 80_397


def test_early_repayment_ends_the_plan_with_accrued_interest_and_the_fee(
    database: Database, caches: LendingCaches, line_id: int
) -> None:
    converted = buy(database, caches, line_id, 120_000)
    plan = _convert(database, caches, line_id, converted)
    run_eod_through(database, date(2025, 3, 19))
    pay(database, caches, line_id, 40_803)
    run_eod_through(database, date(2025, 4, 7))
    pay(database, caches, line_id, 40_803)
    run_eod_through(database, date(2025, 4, 9))
    with database.engine.begin() as conn:
        result = repay_plan_early(conn, caches, line_id=line_id, plan_id=plan.id)
    quote = result.quote
    # On 10 April: principal left 40,398; interest since the 5 April bill: 40,398 × 12% ×
    # 5 / 365 = 66.40 → 66; fee 1% × 40,398 = 403.98 → 404. Total 40,868.
    assert (quote.principal_fen, quote.interest_fen, quote.fee_fen) == (40_398, 66, 404)
    assert result.repayment.amount_fen == 40_868
    assert result.plan.status == "paid_off"
    assert [i.status for i in result.plan.installments] == ["billed", "billed", "paid_off"]
    assert balances(database, line_id) == {}
    # Interest 1,200 + 804 (installments) + 66 (early repayment); fee 404.
    assert node_balance(database, node_account_code(AccountType.INTEREST_INCOME)) == -2_070
    assert node_balance(database, node_account_code(AccountType.FEE_INCOME)) == -404
    with database.engine.connect() as conn:
        check_ledger(conn)


def test_cancelled_plan_returns_its_purchase_to_the_revolving_bill(
    database: Database, caches: LendingCaches, line_id: int
) -> None:
    converted = buy(database, caches, line_id, 90_000)
    plan = _convert(database, caches, line_id, converted)
    run_eod_through(database, date(2025, 3, 3))
    with database.engine.begin() as conn:
        cancelled = cancel_plan(conn, caches, line_id=line_id, plan_id=plan.id)
    assert cancelled.status == "cancelled"
    run_eod_through(database, date(2025, 3, 5))
    bill = _latest_bill(database, line_id)
    assert (bill.statement_balance_fen, bill.new_principal_fen) == (90_000, 90_000)
    assert bill.installment_principal_fen == 0


def test_RevertWhen_a_plan_is_cancelled_after_its_first_installment_was_billed(
    database: Database, caches: LendingCaches, line_id: int
) -> None:
    converted = buy(database, caches, line_id, 90_000)
    plan = _convert(database, caches, line_id, converted)
    run_eod_through(database, date(2025, 3, 5))
    with database.engine.begin() as conn, pytest.raises(CancellationWindowClosedError):
        cancel_plan(conn, caches, line_id=line_id, plan_id=plan.id)


def test_converted_bill_counts_as_paid_and_is_billed_by_installments(
    database: Database, caches: LendingCaches, line_id: int
) -> None:
    buy(database, caches, line_id, 60_000)
    run_eod_through(database, date(2025, 3, 9))
    bill = _latest_bill(database, line_id)
    with database.engine.begin() as conn:
        plan = convert_bill(conn, caches, line_id=line_id, bill_id=bill.id, tenor_months=3)
    assert plan.principal_fen == 60_000
    assert balances(database, line_id)["principal_unbilled"] == 60_000
    run_eod_through(database, date(2025, 4, 5))
    first = _latest_bill(database, line_id)
    assert bill.id != first.id
    with database.engine.connect() as conn:
        converted = fetch_bill(conn, line_id, bill.id)
    # The conversion paid the bill in full: no interest, nothing past due.
    assert converted.outcome is not None
    assert converted.outcome.paid_in_full
    assert converted.outcome.retro_interest_fen == 0
    # 60,000 over 3 months at 1%: 20,401.32 → 20,401 = 19,801 principal + 600 interest.
    assert (first.statement_balance_fen, first.installment_interest_fen) == (20_401, 600)
    assert node_balance(database, node_account_code(AccountType.INTEREST_INCOME)) == -600


def test_plan_principal_repaid_with_an_ordinary_repayment_pays_the_early_repayment_terms(
    database: Database, caches: LendingCaches, line_id: int
) -> None:
    converted = buy(database, caches, line_id, 90_000)
    plan = _convert(database, caches, line_id, converted)
    # 90,000 over 3 months at 1%: payment 30,601.99 → 30,602; installments
    # (29,702 + 900), (29,999 + 603), (30,299 + 303).
    run_eod_through(database, date(2025, 3, 19))
    # 20 March: the first bill (30,602) and the plan's 60,298 on the early repayment
    # terms, as the early repayment endpoint would quote them: interest 60,298 × 12% ×
    # 15 / 365 = 297.36 → 297, fee 1% = 602.98 → 603. The waterfall takes the bill; what
    # is left prepays the plan (see test_plan_prepayment_api for partial prepayments).
    pay(database, caches, line_id, 30_602 + 60_298 + 297 + 603)
    assert balances(database, line_id) == {}
    run_eod_through(database, date(2025, 4, 5))
    bill = _latest_bill(database, line_id)
    assert (bill.statement_balance_fen, bill.installment_interest_fen) == (0, 0)
    with database.engine.connect() as conn:
        ended = fetch_plan(conn, line_id, plan.id)
    assert ended.status == "paid_off"
    assert [i.status for i in ended.installments] == ["billed", "paid_off", "paid_off"]
    # The first installment's interest and the early repayment's, and its fee.
    assert node_balance(database, node_account_code(AccountType.INTEREST_INCOME)) == -1_197
    assert node_balance(database, node_account_code(AccountType.FEE_INCOME)) == -603
    assert balances(database, line_id) == {}
    with database.engine.connect() as conn:
        check_ledger(conn)


def test_RevertWhen_a_plan_is_ended_on_the_day_its_next_installment_is_billed(
    database: Database, caches: LendingCaches, line_id: int
) -> None:
    run_eod_through(database, date(2025, 3, 4))
    converted = buy(database, caches, line_id, 90_000)
    plan = _convert(database, caches, line_id, converted)
    # 5 March is the bill date: the first installment is billed at its end of day.
    with database.engine.begin() as conn, pytest.raises(ConflictError) as error:
        cancel_plan(conn, caches, line_id=line_id, plan_id=plan.id)
    assert error.value.code == "installment_billing"


def test_plan_principal_missing_at_the_bill_cut_is_re_amortized_not_dropped(
    database: Database, caches: LendingCaches, line_id: int
) -> None:
    converted = buy(database, caches, line_id, 90_000)
    plan = _convert(database, caches, line_id, converted)
    # End of day's safety net: 30,000 of the plan's principal is no longer on the line.
    # The 60,000 left over the same 3 months at 1%: 20,401 = (19,801 + 600),
    # (19,999 + 402), (20,200 + 202); no month is left empty.
    with database.engine.begin() as conn:
        settled = settle_prepaid_installments(conn, {line_id: 30_000}, OPENED, caches.products)
        kept = fetch_plan(conn, line_id, plan.id)
    assert settled == {line_id: 30_000}
    assert [(i.principal_fen, i.interest_fen, i.status) for i in kept.installments] == [
        (19_801, 600, "scheduled"), (19_999, 402, "scheduled"), (20_200, 202, "scheduled")
    ]  # fmt: skip
