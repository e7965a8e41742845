"""Bill mode as pure functions, with worked examples computed by hand: a bill merging
purchases and an installment, a missed due date (unpaid minimum, late fee, interest
from each posting date), a partial repayment, and the oldest unpaid bill."""

from __future__ import annotations

from datetime import date
from typing import Any

from node_api.ledger.accounts import AccountType as A
from node_api.lending.billing_rules import Component
from node_api.lending.bills import (
    BillCutInputs,
    BillDebt,
    CycleUse,
    DueInstallment,
    compute_bill_cut,
    compute_bill_late_fee,
    compute_due_outcome,
    compute_retro_interest,
    find_oldest_unpaid_bill,
)
from node_api.lending.interest import DailyRate
from node_api.lending.products import ProductTerms, parse_product_terms
from tests.unit.lending.samples import revolving_product_data

ORDER = (Component.PENALTY, Component.FEES, Component.INTEREST, Component.PRINCIPAL)
RATE_500_PPM = DailyRate(500, 1_000_000)


def _terms(**changes: Any) -> ProductTerms:
    data = revolving_product_data()
    data.update(changes)
    return parse_product_terms(data)


def test_bill_merges_revolving_purchases_and_a_due_installment() -> None:
    # Unbilled principal 50,000 = purchases 12,000 + 8,000 (revolving) + a plan of 30,000
    # whose first installment (principal 10,000, interest 300) is billed now.
    # Billed: principal 20,000 + 10,000 = 30,000; interest 300 (to income).
    # Statement = 30,300. Minimum = 10% × revolving principal 20,000 = 2,000
    #   + due installment 10,300 = 12,300 (above the 5,000 floor).
    balances = {A.PRINCIPAL_UNBILLED: 50_000}
    installment = DueInstallment(1, 1, 10_000, 300, 0)
    cut = compute_bill_cut(BillCutInputs(balances, 30_000, [installment]), _terms())
    assert cut.movement == {
        A.PRINCIPAL_UNBILLED: -30_000,
        A.PRINCIPAL_BILLED: 30_000,
        A.INTEREST_BILLED: 300,
    }
    assert cut.interest_income_fen == 300
    figures = cut.figures
    assert figures["statement_balance_fen"] == 30_300
    assert figures["minimum_payment_fen"] == 12_300
    assert figures["new_principal_fen"] == 20_000
    assert figures["installment_principal_fen"] == 10_000
    assert figures["plan_principal_fen"] == 20_000
    assert figures["total_balance_fen"] == 50_300


def test_bill_carries_old_balances_and_bills_accrued_interest_and_fees() -> None:
    # Carried: billed principal 40,000 and 1,000 past due; accrued interest 600 and a
    # 3,000 late fee already past due. New purchases 10,000.
    # Statement = 50,000 principal billed + 600 interest + 1,000 + 3,000 past due = 54,600.
    # Minimum = 10% × 50,000 = 5,000 + interest 600 + past due 4,000 = 9,600.
    balances = {
        A.PRINCIPAL_UNBILLED: 10_000,
        A.PRINCIPAL_BILLED: 40_000,
        A.PRINCIPAL_PAST_DUE: 1_000,
        A.INTEREST_UNBILLED: 600,
        A.FEE_PAST_DUE: 3_000,
    }
    cut = compute_bill_cut(BillCutInputs(balances, 0), _terms())
    assert cut.figures["statement_balance_fen"] == 54_600
    assert cut.figures["minimum_payment_fen"] == 9_600
    assert cut.figures["carried_fen"] == 44_000
    assert cut.figures["past_due_fen"] == 4_000


def test_empty_bill_states_nothing() -> None:
    cut = compute_bill_cut(BillCutInputs({}, 0), _terms())
    assert cut.movement == {}
    assert cut.figures["statement_balance_fen"] == cut.figures["minimum_payment_fen"] == 0


def test_missed_due_date_makes_the_unpaid_minimum_past_due_in_waterfall_order() -> None:
    # Bill of 30,300 (30,000 principal, 300 interest), minimum 12,300. 2,300 was paid:
    # the waterfall took the 300 interest, then 2,000 principal, leaving 28,000 billed.
    # Unpaid minimum = 12,300 − 2,300 = 10,000, nothing past due yet → move 10,000 of
    # billed principal to past due. Not paid in full.
    balances = {A.PRINCIPAL_BILLED: 28_000}
    outcome = compute_due_outcome(
        statement_fen=30_300, minimum_fen=12_300, paid_fen=2_300, balances=balances, order=ORDER
    )
    assert not outcome.paid_in_full
    assert outcome.unpaid_minimum_fen == 10_000
    assert outcome.moved_to_past_due_fen == 10_000
    assert outcome.movement == {A.PRINCIPAL_BILLED: -10_000, A.PRINCIPAL_PAST_DUE: 10_000}


def test_unpaid_minimum_moves_interest_before_principal_and_counts_older_past_due() -> None:
    # Minimum 9,600 included 4,000 already past due; 1,000 was paid (to the past due
    # first), leaving 3,000 past due. Unpaid minimum 8,600 − 3,000 still past due = 5,600
    # more: interest 600 first, then 5,000 of principal.
    balances = {A.INTEREST_BILLED: 600, A.PRINCIPAL_BILLED: 50_000, A.FEE_PAST_DUE: 3_000}
    outcome = compute_due_outcome(
        statement_fen=54_600, minimum_fen=9_600, paid_fen=1_000, balances=balances, order=ORDER
    )
    assert outcome.moved_to_past_due_fen == 5_600
    assert outcome.movement == {
        A.INTEREST_BILLED: -600,
        A.INTEREST_PAST_DUE: 600,
        A.PRINCIPAL_BILLED: -5_000,
        A.PRINCIPAL_PAST_DUE: 5_000,
    }


def test_partial_repayment_of_the_minimum_is_on_time_but_loses_the_free_period() -> None:
    # Paid exactly the minimum: nothing past due, but the bill is not paid in full.
    outcome = compute_due_outcome(
        statement_fen=30_300, minimum_fen=12_300, paid_fen=12_300,
        balances={A.PRINCIPAL_BILLED: 18_000}, order=ORDER,
    )  # fmt: skip
    assert (outcome.paid_in_full, outcome.moved_to_past_due_fen, outcome.movement) == (False, 0, {})
    paid = compute_due_outcome(
        statement_fen=30_300, minimum_fen=12_300, paid_fen=30_300, balances={}, order=ORDER
    )
    assert paid.paid_in_full


def test_lost_free_period_charges_interest_from_each_posting_date_through_the_due_date() -> None:
    # 12,000 posted 10 March and 8,000 posted 20 March, due 10 April, 500 ppm a day:
    # 12,000 × 32 days + 8,000 × 22 days = 560,000 fen-days × 0.0005 = 280 fen.
    uses = [CycleUse(12_000, date(2025, 3, 10)), CycleUse(8_000, date(2025, 3, 20))]
    assert compute_retro_interest(uses, date(2025, 4, 10), RATE_500_PPM) == 280


def test_retro_interest_rounds_once_half_even() -> None:
    # 1,001 × 1 day × 0.0005 = 0.5005 → 1; 1,000 × 1 day = 0.5 → 0 (ties to even).
    assert (
        compute_retro_interest([CycleUse(1_001, date(2025, 1, 1))], date(2025, 1, 1), RATE_500_PPM)
        == 1
    )
    assert (
        compute_retro_interest([CycleUse(1_000, date(2025, 1, 1))], date(2025, 1, 1), RATE_500_PPM)
        == 0
    )


def test_late_fee_is_capped_by_the_share_of_the_unpaid_minimum() -> None:
    # Fixed 3,000, cap 1.5% of what is unpaid: 10,000 unpaid → 150; per-bill cap 5,000.
    terms = _terms()
    assert compute_bill_late_fee(terms, 10_000, 10_000) == 150
    # 300,000 unpaid → 1.5% = 4,500 > 3,000 → the fixed 3,000.
    assert compute_bill_late_fee(terms, 300_000, 320_000) == 3_000
    # 100,000 unpaid → 1.5% = 1,500 < 3,000 → 1,500.
    assert compute_bill_late_fee(terms, 100_000, 120_000) == 1_500
    # Paid during grace: nothing left past due, no fee.
    assert compute_bill_late_fee(terms, 10_000, 0) == 0


def test_oldest_unpaid_bill_is_found_by_paying_past_due_amounts_oldest_first() -> None:
    debts = [
        BillDebt(2, date(2025, 4, 25), 6_000),
        BillDebt(1, date(2025, 3, 25), 5_000),
    ]
    # 11,000 charged, 7,000 still past due → 4,000 repaid, all on the March bill.
    assert find_oldest_unpaid_bill(debts, 7_000) == debts[1]
    # 6,000 past due → 5,000 repaid: the March bill is cleared, the April one is oldest.
    assert find_oldest_unpaid_bill(debts, 6_000) == debts[0]
    assert find_oldest_unpaid_bill(debts, 0) is None
    assert find_oldest_unpaid_bill([], 500) is None
