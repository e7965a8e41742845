"""Bill-mode rules: calendar, minimum payment, late fee, delinquency, waterfall."""

from __future__ import annotations

from datetime import date

import pytest

from node_api.kernel.errors import CreditNetValueError
from node_api.lending.billing_rules import (
    BucketThreshold,
    Component,
    DelinquencyBucket,
    LoanClass,
    OutstandingItem,
    compute_bill_calendar,
    compute_bill_date_on_or_after,
    compute_cycle_window,
    compute_days_past_due,
    compute_delinquency_bucket,
    compute_due_date,
    compute_late_fee,
    compute_late_fee_date,
    compute_loan_class,
    compute_minimum_payment,
    compute_next_bill_date,
    compute_penalty_interest_days,
    compute_waterfall,
    is_bill_date,
    is_charge_off_due,
    is_non_accrual,
)
from node_api.lending.products import parse_product
from node_api.lending.products.model import ClassificationThresholds
from tests.unit.lending.samples import installment_product_data

# --------------------------------------------------------------- calendar


def test_next_bill_date_is_strictly_after_the_date() -> None:
    assert compute_next_bill_date(date(2025, 1, 9), 10) == date(2025, 1, 10)
    assert compute_next_bill_date(date(2025, 1, 10), 10) == date(2025, 2, 10)
    assert compute_next_bill_date(date(2025, 12, 15), 10) == date(2026, 1, 10)


def test_bill_date_on_or_after_includes_the_bill_day_itself() -> None:
    assert compute_bill_date_on_or_after(date(2025, 1, 10), 10) == date(2025, 1, 10)
    assert compute_bill_date_on_or_after(date(2025, 1, 11), 10) == date(2025, 2, 10)


def test_bill_calendar_lists_the_next_bill_dates() -> None:
    assert compute_bill_calendar(date(2025, 11, 28), 28, 3) == (
        date(2025, 12, 28),
        date(2026, 1, 28),
        date(2026, 2, 28),
    )


def test_cycle_window_runs_from_the_day_after_the_last_bill_through_the_bill_date() -> None:
    assert compute_cycle_window(date(2025, 3, 10)) == (date(2025, 2, 11), date(2025, 3, 10))
    assert compute_cycle_window(date(2025, 1, 5)) == (date(2024, 12, 6), date(2025, 1, 5))


def test_due_date_is_the_bill_date_plus_the_offset() -> None:
    assert compute_due_date(date(2025, 1, 25), 20) == date(2025, 2, 14)


def test_RevertWhen_bill_day_is_32_or_0() -> None:
    for bill_day in (0, 32):
        with pytest.raises(CreditNetValueError) as caught:
            compute_next_bill_date(date(2025, 1, 1), bill_day)
        assert caught.value.field == "bill_day"


def test_bill_days_29_to_31_follow_the_end_of_month_rule() -> None:
    # Bill day 31: 31 January, 28 February (2025), 29 February (2024), 31 March, 30 April.
    dates = compute_bill_calendar(date(2025, 1, 1), 31, 4)
    assert dates == (date(2025, 1, 31), date(2025, 2, 28), date(2025, 3, 31), date(2025, 4, 30))
    assert compute_bill_date_on_or_after(date(2024, 2, 10), 30) == date(2024, 2, 29)
    assert compute_bill_date_on_or_after(date(2025, 3, 1), 29) == date(2025, 3, 29)
    # The cycle of the 28 February bill of bill day 31 starts after 31 January; that of 31
    # March after 28 February.
    assert compute_cycle_window(date(2025, 2, 28), 31) == (date(2025, 2, 1), date(2025, 2, 28))
    assert compute_cycle_window(date(2025, 3, 31), 31) == (date(2025, 3, 1), date(2025, 3, 31))
    assert is_bill_date(date(2025, 2, 28), 30) and not is_bill_date(date(2025, 3, 28), 30)


# --------------------------------------------------------- minimum payment


def test_minimum_payment_is_share_of_new_principal_plus_everything_due() -> None:
    # 10% of 1,234.56 = 123.456 → 123.46 (rounded up), + fees 30.00 + interest 15.00
    # + installment due 1,066.19 + nothing past due = 1,234.65 yuan.
    minimum = compute_minimum_payment(
        statement_balance_fen=300_000,
        new_principal_fen=123_456,
        fees_fen=3_000,
        interest_fen=1_500,
        due_installments_fen=106_619,
        past_due_fen=0,
        principal_share_bps=1_000,
        floor_fen=5_000,
    )

    assert minimum == 123_465


def test_minimum_payment_has_a_floor_but_never_exceeds_the_statement_balance() -> None:
    common = {
        "new_principal_fen": 10_000,
        "fees_fen": 0,
        "interest_fen": 0,
        "due_installments_fen": 0,
        "past_due_fen": 0,
        "principal_share_bps": 1_000,
        "floor_fen": 5_000,
    }

    # 10% of 100.00 = 10.00 < floor 50.00.
    assert compute_minimum_payment(statement_balance_fen=10_000, **common) == 5_000
    # A 30.00 statement cannot require 50.00.
    assert compute_minimum_payment(statement_balance_fen=3_000, **common) == 3_000


# ---------------------------------------------------------------- late fee


def _late_fee(unpaid_minimum_fen: int, already_fen: int) -> int:
    # Product: 30.00 fixed, at most 5% of the unpaid minimum, at most 50.00 per bill.
    return compute_late_fee(
        unpaid_minimum_fen=unpaid_minimum_fen,
        late_fee_fixed_fen=3_000,
        late_fee_cap_bps=500,
        late_fee_cap_per_bill_fen=5_000,
        late_fees_charged_on_bill_fen=already_fen,
    )


def test_late_fee_is_the_fixed_fee_when_no_cap_binds() -> None:
    # 5% of 1,000.00 = 50.00 > 30.00: the fixed 30.00 applies.
    assert _late_fee(100_000, 0) == 3_000


def test_late_fee_is_capped_by_the_share_of_the_unpaid_minimum() -> None:
    # 5% of 400.00 = 20.00 < 30.00; 5% of 123.45 = 6.1725 → 6.17 (rounded down).
    assert _late_fee(40_000, 0) == 2_000
    assert _late_fee(12_345, 0) == 617


def test_late_fee_is_capped_per_bill() -> None:
    # 30.00 already charged on this bill: only 20.00 of the 50.00 cap is left; then none.
    assert _late_fee(100_000, 3_000) == 2_000
    assert _late_fee(100_000, 5_000) == 0


def test_no_late_fee_when_nothing_is_unpaid() -> None:
    assert _late_fee(0, 0) == 0


def test_late_fee_is_charged_the_day_after_grace() -> None:
    assert compute_late_fee_date(date(2025, 2, 14), 3) == date(2025, 2, 18)


# ------------------------------------------------- days past due, penalty days


def test_days_past_due_start_the_day_after_the_due_date() -> None:
    assert compute_days_past_due(date(2025, 2, 14), date(2025, 2, 14)) == 0
    assert compute_days_past_due(date(2025, 2, 14), date(2025, 2, 15)) == 1


def test_penalty_interest_days_wait_for_grace_then_catch_up() -> None:
    due = date(2025, 2, 14)
    days = [compute_penalty_interest_days(due, date(2025, 2, day), 3) for day in range(14, 21)]

    # 14th due; 15–17 in grace; 18th: 4 days at once; then 1 a day.
    assert days == [0, 0, 0, 0, 4, 1, 1]
    assert sum(days) == compute_days_past_due(due, date(2025, 2, 20))


# ------------------------------------------------------------ delinquency


@pytest.mark.parametrize(
    ("days_past_due", "bucket"),
    [
        (0, DelinquencyBucket.M0),
        (1, DelinquencyBucket.M1),
        (30, DelinquencyBucket.M1),
        (31, DelinquencyBucket.M2),
        (60, DelinquencyBucket.M2),
        (61, DelinquencyBucket.M3),
        (90, DelinquencyBucket.M3),
        (91, DelinquencyBucket.M4),
        (120, DelinquencyBucket.M4),
        (121, DelinquencyBucket.M5),
        (150, DelinquencyBucket.M5),
        (151, DelinquencyBucket.M6),
        (180, DelinquencyBucket.M6),
        (181, DelinquencyBucket.M7_PLUS),
        (400, DelinquencyBucket.M7_PLUS),
    ],
)
def test_delinquency_buckets_by_days_past_due(
    days_past_due: int, bucket: DelinquencyBucket
) -> None:
    assert compute_delinquency_bucket(days_past_due) is bucket


def test_delinquency_bucket_uses_the_product_thresholds() -> None:
    thresholds = parse_product(installment_product_data()).delinquency.thresholds
    custom = (BucketThreshold(8, DelinquencyBucket.M1), BucketThreshold(40, DelinquencyBucket.M2))

    assert compute_delinquency_bucket(45, thresholds) is DelinquencyBucket.M2
    assert compute_delinquency_bucket(7, custom) is DelinquencyBucket.M0
    assert compute_delinquency_bucket(45, custom) is DelinquencyBucket.M2


def test_charge_off_once_more_than_the_products_days_past_due_in_M7() -> None:
    # "180+ days": day 180 is still M6 and on the books; day 181 is M7+ and charged off.
    assert not is_charge_off_due(180)
    assert compute_delinquency_bucket(180) is DelinquencyBucket.M6
    assert is_charge_off_due(181)
    assert compute_delinquency_bucket(181) is DelinquencyBucket.M7_PLUS
    assert not is_charge_off_due(90, charge_off_days=90)
    assert is_charge_off_due(91, charge_off_days=90)


def test_non_accrual_from_90_days_past_due_by_default() -> None:
    assert not is_non_accrual(89)
    assert is_non_accrual(90)
    assert is_non_accrual(10, non_accrual_days=10)


def test_five_tier_classification_with_the_default_thresholds() -> None:
    # Overdue: special mention; over 90 days: substandard; over 270: doubtful; over 360:
    # loss; charged off: loss whatever the days.
    thresholds = ClassificationThresholds()
    cases = [(0, "normal"), (1, "special_mention"), (90, "special_mention"),
             (91, "substandard"), (270, "substandard"), (271, "doubtful"),
             (360, "doubtful"), (361, "loss")]  # fmt: skip
    for days, expected in cases:
        assert compute_loan_class(days, thresholds).value == expected, days
    assert compute_loan_class(0, thresholds, charged_off=True) is LoanClass.LOSS
    with pytest.raises(CreditNetValueError):
        compute_loan_class(-1, thresholds)


# --------------------------------------------------------------- waterfall

_FEB = date(2025, 2, 14)
_MAR = date(2025, 3, 14)


def _items() -> list[OutstandingItem]:
    return [
        OutstandingItem("cur-principal", Component.PRINCIPAL, 100_000, False, _MAR),
        OutstandingItem("cur-interest", Component.INTEREST, 1_000, False, _MAR),
        OutstandingItem("pd-principal", Component.PRINCIPAL, 30_000, True, _FEB),
        OutstandingItem("pd-interest", Component.INTEREST, 2_000, True, _FEB),
        OutstandingItem("pd-late-fee", Component.FEES, 2_000, True, _FEB),
        OutstandingItem("pd-penalty", Component.PENALTY, 150, True, _FEB),
    ]


def test_waterfall_pays_past_due_before_current_in_the_product_order() -> None:
    # 500.00 yuan: past-due penalty 1.50, fee 20.00, interest 20.00, principal 300.00
    # (341.50 in all), then current interest 10.00 and 148.50 of current principal.
    result = compute_waterfall(50_000, _items())

    assert [(a.item_id, a.amount_fen) for a in result.allocations] == [
        ("pd-penalty", 150),
        ("pd-late-fee", 2_000),
        ("pd-interest", 2_000),
        ("pd-principal", 30_000),
        ("cur-interest", 1_000),
        ("cur-principal", 14_850),
    ]
    assert result.allocated_fen == 50_000
    assert result.credit_balance_fen == 0


def test_waterfall_holds_an_overpayment_as_credit_balance() -> None:
    # Everything outstanding is 135,150; 1,400.00 paid leaves 48.50 of credit.
    result = compute_waterfall(140_000, _items())

    assert result.allocated_fen == 135_150
    assert result.credit_balance_fen == 4_850


def test_waterfall_without_past_due_first_follows_component_order_then_age() -> None:
    # Interest first (both, oldest first), then principal.
    order = (Component.INTEREST, Component.PRINCIPAL, Component.PENALTY, Component.FEES)

    result = compute_waterfall(4_000, _items(), order=order, past_due_first=False)

    assert [(a.item_id, a.amount_fen) for a in result.allocations] == [
        ("pd-interest", 2_000),
        ("cur-interest", 1_000),
        ("pd-principal", 1_000),
    ]


def test_waterfall_breaks_ties_by_item_id() -> None:
    items = [
        OutstandingItem("b", Component.FEES, 100, True, _FEB),
        OutstandingItem("a", Component.FEES, 100, True, _FEB),
    ]

    assert [a.item_id for a in compute_waterfall(150, items).allocations] == ["a", "b"]


def test_RevertWhen_allocation_order_misses_a_component() -> None:
    with pytest.raises(CreditNetValueError) as caught:
        compute_waterfall(100, _items(), order=(Component.PENALTY, Component.FEES))

    assert caught.value.field == "allocation.order"


def test_RevertWhen_payment_is_negative() -> None:
    with pytest.raises(CreditNetValueError) as caught:
        compute_waterfall(-1, _items())

    assert caught.value.field == "payment_fen"
