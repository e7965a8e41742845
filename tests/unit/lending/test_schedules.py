"""Installment schedules and payoff quotes: worked examples computed by hand."""

from __future__ import annotations

from datetime import date

import pytest

from node_api.kernel.errors import CreditNetValueError
from node_api.lending.schedules import (
    CancellationWindowClosedError,
    PayoffKind,
    PricingMethod,
    Schedule,
    compute_annuity_payment,
    compute_cancellation_quote,
    compute_due_dates,
    compute_early_repayment_quote,
    compute_prepayment_quote,
    compute_schedule,
)


def _annuity_12k() -> Schedule:
    return compute_schedule(
        1_200_000, 12, PricingMethod.ANNUITY, 1_200, date(2025, 1, 5), date(2025, 2, 10)
    )


def test_annuity_payment_matches_the_formula_for_12000_yuan_at_12_percent() -> None:
    # r = 12% / 12 = 1%. 1.01^12 = 1.1268250, so 1 − 1.01^−12 = 0.1125508;
    # P·r / (1 − (1+r)^−n) = 12,000 / 0.1125508 = 106,618.55 fen → 1,066.19 yuan.
    assert compute_annuity_payment(1_200_000, 12, 1_200) == 106_619


def test_annuity_schedule_for_12000_yuan_at_12_percent_over_12_months() -> None:
    schedule = _annuity_12k()
    first, second, *_, last = schedule.installments

    # 1: interest 1% of 1,200,000 = 12,000; principal 106,619 − 12,000 = 94,619.
    assert (first.interest_fen, first.principal_fen, first.balance_after_fen) == (
        12_000,
        94_619,
        1_105_381,
    )
    # 2: interest 1% of 1,105,381 = 11,053.81 → 11,054; principal 95,565.
    assert (second.interest_fen, second.principal_fen) == (11_054, 95_565)
    # 12: the last takes the remaining 105,558 of principal plus 1,055.58 → 1,056 interest:
    # 106,614, five fen below the level payment (the rounding remainder).
    assert (last.principal_fen, last.interest_fen, last.payment_fen) == (105_558, 1_056, 106_614)
    assert all(item.payment_fen == 106_619 for item in schedule.installments[:-1])
    # Totals: 11 × 106,619 + 106,614 = 1,279,423, i.e. 79,423 fen of interest.
    assert schedule.total_principal_fen == 1_200_000
    assert schedule.total_interest_fen == 79_423
    assert schedule.total_payment_fen == 1_279_423
    assert last.balance_after_fen == 0


def test_annuity_at_zero_rate_splits_principal_half_even_and_last_takes_the_rest() -> None:
    # 1,000.00 yuan over 3 at 0%: 100,000 / 3 = 33,333.33 → 33,333; last 33,334.
    schedule = compute_schedule(
        100_000, 3, PricingMethod.ANNUITY, 0, date(2025, 1, 5), date(2025, 2, 5)
    )

    assert [item.payment_fen for item in schedule.installments] == [33_333, 33_333, 33_334]
    assert schedule.total_interest_fen == 0


def test_equal_principal_schedule_puts_the_remainder_on_the_first_installment() -> None:
    # 10,000.00 yuan at 12% over 3: 1,000,000 // 3 = 333,333 remainder 1 → first 333,334.
    # Interest at 1% a month on the balance: 10,000; 6,666.66 → 6,667; 3,333.33 → 3,333.
    schedule = compute_schedule(
        1_000_000, 3, PricingMethod.EQUAL_PRINCIPAL, 1_200, date(2025, 1, 5), date(2025, 2, 10)
    )

    rows = [(i.principal_fen, i.interest_fen, i.payment_fen) for i in schedule.installments]
    assert rows == [
        (333_334, 10_000, 343_334),
        (333_333, 6_667, 340_000),
        (333_333, 3_333, 336_666),
    ]
    assert schedule.total_interest_fen == 20_000


def test_flat_fee_schedule_at_0_6_percent_monthly_on_6000_yuan_over_6() -> None:
    # Fee 600,000 × 60 / 10,000 = 3,600 fen (36.00 yuan) every month on the ORIGINAL
    # principal; principal 600,000 / 6 = 100,000; payment 103,600; fees total 21,600.
    schedule = compute_schedule(
        600_000, 6, PricingMethod.FLAT_MONTHLY_FEE, 60, date(2025, 1, 5), date(2025, 2, 10)
    )

    assert all(
        (item.principal_fen, item.interest_fen, item.fee_fen, item.payment_fen)
        == (100_000, 0, 3_600, 103_600)
        for item in schedule.installments
    )
    assert schedule.total_fee_fen == 21_600


def test_flat_fee_rounds_half_even_and_principal_remainder_goes_first() -> None:
    # 1,001.00 yuan at 0.5%: fee 100,100 × 50 / 10,000 = 500.5 → 500 (tie to even);
    # 1,003.00 yuan: 501.5 → 502. Principal 100,100 // 6 = 16,683 remainder 2 → first 16,685.
    schedule = compute_schedule(
        100_100, 6, PricingMethod.FLAT_MONTHLY_FEE, 50, date(2025, 1, 5), date(2025, 2, 10)
    )
    other = compute_schedule(
        100_300, 6, PricingMethod.FLAT_MONTHLY_FEE, 50, date(2025, 1, 5), date(2025, 2, 10)
    )

    assert [item.principal_fen for item in schedule.installments] == [16_685] + [16_683] * 5
    assert {item.fee_fen for item in schedule.installments} == {500}
    assert {item.fee_fen for item in other.installments} == {502}


def test_installment_fee_is_added_to_every_installment() -> None:
    schedule = compute_schedule(
        600_000, 6, PricingMethod.EQUAL_PRINCIPAL, 0, date(2025, 1, 5), date(2025, 2, 10), 500
    )

    assert [item.fee_fen for item in schedule.installments] == [500] * 6
    assert schedule.total_payment_fen == 603_000


def test_due_dates_clamp_to_month_end_and_keep_the_anchor_day() -> None:
    # Anchor 31 Jan 2024 (leap year): 29 Feb, then back to 31 Mar, 30 Apr, 31 May.
    assert compute_due_dates(date(2024, 1, 31), 5) == (
        date(2024, 1, 31),
        date(2024, 2, 29),
        date(2024, 3, 31),
        date(2024, 4, 30),
        date(2024, 5, 31),
    )


def test_due_dates_roll_over_the_year() -> None:
    assert compute_due_dates(date(2025, 11, 10), 3)[-1] == date(2026, 1, 10)


@pytest.mark.parametrize(
    ("principal_fen", "tenor_months", "rate_bps", "field"),
    [(0, 12, 1_200, "principal_fen"), (100, 0, 1_200, "tenor_months"), (100, 3, -1, "rate_bps")],
)
def test_RevertWhen_plan_inputs_are_invalid(
    principal_fen: int, tenor_months: int, rate_bps: int, field: str
) -> None:
    with pytest.raises(CreditNetValueError) as caught:
        compute_schedule(
            principal_fen,
            tenor_months,
            PricingMethod.ANNUITY,
            rate_bps,
            date(2025, 1, 5),
            date(2025, 2, 5),
        )

    assert caught.value.field == field


def test_RevertWhen_first_due_date_is_before_the_start() -> None:
    with pytest.raises(CreditNetValueError) as caught:
        compute_schedule(100_000, 3, PricingMethod.ANNUITY, 0, date(2025, 2, 5), date(2025, 2, 4))

    assert caught.value.field == "first_due_date"


# ----------------------------------------------------------------- payoff


def test_early_repayment_quote_after_two_billed_installments() -> None:
    # Two installments billed (10 Feb, 10 Mar); principal left 1,009,816.
    # 15 days from 10 Mar to 25 Mar: 1,009,816 × 12% × 15 / 365 = 4,979.91 → 4,980.
    # Fee 1% of 1,009,816 = 10,098.16 → 10,098. Total 1,024,894.
    quote = compute_early_repayment_quote(_annuity_12k(), date(2025, 3, 25), 2, 100)

    assert quote.kind is PayoffKind.EARLY_REPAYMENT
    assert (quote.principal_fen, quote.interest_fen, quote.fee_fen) == (1_009_816, 4_980, 10_098)
    assert quote.accrual_days == 15
    assert quote.total_fen == 1_024_894


def test_early_repayment_interest_is_capped_at_the_scheduled_interest() -> None:
    # 5 Jan to 9 Feb is 35 days: 1,200,000 × 12% × 35 / 365 = 13,808 > 12,000 scheduled.
    quote = compute_early_repayment_quote(_annuity_12k(), date(2025, 2, 9), 0, 0)

    assert quote.interest_fen == 12_000


def test_early_repayment_of_a_flat_fee_plan_charges_no_further_fees_or_interest() -> None:
    schedule = compute_schedule(
        600_000, 6, PricingMethod.FLAT_MONTHLY_FEE, 60, date(2025, 1, 5), date(2025, 2, 10)
    )

    quote = compute_early_repayment_quote(schedule, date(2025, 2, 20), 1, 0)

    assert (quote.principal_fen, quote.interest_fen, quote.fee_fen) == (500_000, 0, 0)


def test_early_repayment_quote_is_zero_once_everything_is_billed() -> None:
    quote = compute_early_repayment_quote(_annuity_12k(), date(2026, 2, 1), 12, 100)

    assert quote.total_fen == 0


def test_RevertWhen_an_installment_due_by_the_quote_date_is_not_billed() -> None:
    with pytest.raises(CreditNetValueError) as caught:
        compute_early_repayment_quote(_annuity_12k(), date(2025, 2, 10), 0, 100)

    assert caught.value.field == "installments_billed"


def _plan_90k() -> Schedule:
    return compute_schedule(
        90_000, 3, PricingMethod.ANNUITY, 1_200, date(2025, 3, 1), date(2025, 3, 5)
    )


def test_a_partial_prepayment_takes_the_early_repayment_terms_on_the_part_prepaid() -> None:
    # Installments (29,702 + 900), (29,999 + 603), (30,299 + 303); the first billed on
    # 5 March. On 20 March, 59,411 of the 60,298 left: interest 59,411 × 12% × 15 / 365 =
    # 292.99 → 293 (under the cap, 603); fee 1% = 594.11 → 594.
    quote = compute_prepayment_quote(_plan_90k(), date(2025, 3, 20), 1, 100, 59_411)

    assert (quote.principal_fen, quote.interest_fen, quote.fee_fen) == (59_411, 293, 594)
    assert quote.accrual_days == 15
    full = compute_prepayment_quote(_plan_90k(), date(2025, 3, 20), 1, 100, None)
    assert full == compute_early_repayment_quote(_plan_90k(), date(2025, 3, 20), 1, 100)
    assert full.principal_fen == 60_298


def test_RevertWhen_a_prepayment_exceeds_the_principal_not_yet_billed() -> None:
    with pytest.raises(CreditNetValueError) as caught:
        compute_prepayment_quote(_plan_90k(), date(2025, 3, 20), 1, 100, 60_299)

    assert caught.value.field == "principal_fen"


def test_cancellation_within_the_window_returns_principal_only() -> None:
    quote = compute_cancellation_quote(_annuity_12k(), date(2025, 1, 12), 0, 7)

    assert quote.kind is PayoffKind.CANCELLATION
    assert (quote.principal_fen, quote.interest_fen, quote.fee_fen) == (1_200_000, 0, 0)


def test_RevertWhen_cancelling_after_the_window() -> None:
    with pytest.raises(CancellationWindowClosedError) as caught:
        compute_cancellation_quote(_annuity_12k(), date(2025, 1, 13), 0, 7)

    assert caught.value.field == "as_of"
    assert caught.value.code == "cancellation_window_closed"
