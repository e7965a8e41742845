"""Interest accrual: daily ppm and annual bps rates, day counts, rounding, batches."""

from __future__ import annotations

from datetime import date

import pytest

from node_api.kernel.errors import CreditNetValueError
from node_api.ledger.settlement_events import DayCount, InterestMethod
from node_api.lending.interest import (
    DailyRate,
    compute_accrual_days,
    compute_daily_interest_apr,
    compute_daily_interest_ppm,
    compute_daily_rate,
    compute_interest,
    compute_interest_batch,
    compute_interest_between,
    compute_penalty_interest,
)


def test_daily_interest_at_500_ppm_on_10000_yuan_is_5_yuan() -> None:
    # 1,000,000 fen × 500 / 1,000,000 = 500 fen.
    assert compute_daily_interest_ppm(1_000_000, 500) == 500


@pytest.mark.parametrize(
    ("balance_fen", "expected_fen"),
    [
        (1_000, 0),  # 1,000 × 500 / 1e6 = 0.5 → 0 (tie to even)
        (3_000, 2),  # 1.5 → 2 (tie to even)
        (5_000, 2),  # 2.5 → 2 (tie to even)
        (1_001, 1),  # 0.5005 → 1 (above the tie)
    ],
)
def test_daily_interest_rounds_half_even(balance_fen: int, expected_fen: int) -> None:
    assert compute_daily_interest_ppm(balance_fen, 500) == expected_fen


def test_daily_interest_from_an_annual_rate_uses_the_day_count_year() -> None:
    # ACT/365: 1,000,000 × 1,825 / (10,000 × 365) = 500; ACT/360: 1,800 bps gives 500.
    assert compute_daily_interest_apr(1_000_000, 1_825, DayCount.ACT_365) == 500
    assert compute_daily_interest_apr(1_000_000, 1_800, DayCount.ACT_360) == 500


def test_daily_rate_is_an_exact_fraction() -> None:
    assert compute_daily_rate(InterestMethod.DAILY_PPM, 500, DayCount.ACT_360) == DailyRate(
        500, 1_000_000
    )
    assert compute_daily_rate(InterestMethod.APR_BPS, 1_200, DayCount.ACT_360) == DailyRate(
        1_200, 3_600_000
    )


def test_accrual_days_count_actual_days_start_inclusive_end_exclusive() -> None:
    # February 2024 has 29 days.
    assert compute_accrual_days(date(2024, 2, 1), date(2024, 3, 1)) == 29
    assert compute_accrual_days(date(2025, 3, 10), date(2025, 3, 10)) == 0


def test_period_interest_rounds_once_not_daily() -> None:
    # 1,001 fen at 500 ppm for 30 days: 1,001 × 500 × 30 / 1e6 = 15.015 → 15 fen, where
    # rounding each day (0.5005 → 1) and summing would charge 30.
    rate = DailyRate(500, 1_000_000)

    assert compute_interest_between(1_001, rate, date(2025, 4, 1), date(2025, 5, 1)) == 15


def test_penalty_interest_on_an_overdue_amount() -> None:
    # 1,000.00 yuan overdue for 10 days at 500 ppm a day: 100,000 × 500 × 10 / 1e6 = 500.
    assert compute_penalty_interest(100_000, 500, 10) == 500


def test_batch_matches_element_by_element() -> None:
    balances = [1_000, 3_000, 1_000_000, 0]
    rates = [
        DailyRate(500, 1_000_000),
        DailyRate(500, 1_000_000),
        compute_daily_rate(InterestMethod.APR_BPS, 1_825, DayCount.ACT_365),
        DailyRate(500, 1_000_000),
    ]

    assert compute_interest_batch(balances, rates, 3) == [
        compute_interest(balance, rate, 3) for balance, rate in zip(balances, rates, strict=True)
    ]
    assert compute_interest_batch(balances, rates) == [0, 2, 500, 0]


def test_RevertWhen_accrual_ends_before_it_starts() -> None:
    with pytest.raises(CreditNetValueError) as caught:
        compute_accrual_days(date(2025, 3, 2), date(2025, 3, 1))

    assert caught.value.field == "end_date"


def test_RevertWhen_balance_is_negative() -> None:
    with pytest.raises(CreditNetValueError) as caught:
        compute_daily_interest_ppm(-1, 500)

    assert caught.value.field == "balance_fen"


def test_RevertWhen_batch_lengths_differ() -> None:
    with pytest.raises(CreditNetValueError):
        compute_interest_batch([1, 2], [DailyRate(1, 1)])
