"""Interest accrual: daily ppm and annual bps rates, day counts, rounding, batches."""

from __future__ import annotations

from datetime import date

import pytest

from node_api.kernel.errors import CreditNetValueError
from node_api.ledger.settlement_events import DayCount, InterestMethod
from node_api.lending.interest import (
    AccrualCarry,
    DailyRate,
    compute_accrual_days,
    compute_carried_interest,
    compute_daily_interest_apr,
    compute_daily_interest_ppm,
    compute_daily_rate,
    compute_interest,
    compute_interest_batch,
    compute_interest_between,
    compute_penalty_interest,
    rescale_carry,
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


# ------------------------------------------------------------ carried daily accrual


def _accrue(balance_fen: int, rate: DailyRate, days: int) -> list[int]:
    """Post `days` days one at a time, carrying the remainder; the daily posts."""
    carry: AccrualCarry | None = None
    posts = []
    for _ in range(days):
        posted, carry = compute_carried_interest(carry, balance_fen, rate, 1)
        posts.append(int(posted))
    return posts


RATE_500_PPM = DailyRate(500, 1_000_000)


def test_carried_accrual_posts_the_exact_interest_of_the_days_rounded_once() -> None:
    # 3,000 fen at 500 ppm a day is exactly 1.5 fen a day. Rounded half-even each day it
    # posted 2 every day (+0.5 fen a day: 60 fen in 30 days). Carried: the running total
    # 1.5, 3, 4.5, 6 fen rounds half-even to 2, 3, 4, 6, so the days post 2, 1, 1, 2, ...
    posts = _accrue(3_000, RATE_500_PPM, 30)
    assert posts[:8] == [2, 1, 1, 2, 2, 1, 1, 2]
    assert sum(posts) == 45  # 30 × 1.5, exactly
    # 7 days: 10.5 fen rounded half-even once is 10, the same as one 7-day computation.
    assert sum(posts[:7]) == 10 == compute_interest(3_000, RATE_500_PPM, 7)


def test_carried_accrual_does_not_drift_down_either() -> None:
    # 10,001 fen at 12% a year ACT/365: 10,001 × 1,200 / 3,650,000 = 3.28800 fen a day.
    # Rounded each day: 3 a day, 90 in 30 days. Exactly: 98.640 → 99.
    rate = DailyRate(1_200, 10_000 * 365)
    posts = _accrue(10_001, rate, 30)
    assert sum(posts) == 99
    assert set(posts) == {3, 4}


def test_the_carry_keeps_the_running_total_modulo_two_fen() -> None:
    # After 3 days of 1.5 fen the total is 4.5 fen: 4.5 mod 2 = 0.5 fen = 500,000 / 1e6.
    carry = None
    for _ in range(3):
        _, carry = compute_carried_interest(carry, 3_000, RATE_500_PPM, 1)
    assert carry == AccrualCarry(500_000, 1_000_000)
    # A run of several days at once (penalty's first day past grace) carries the same.
    posted, at_once = compute_carried_interest(None, 3_000, RATE_500_PPM, 3)
    assert (posted, at_once) == (4, carry)


def test_a_changed_balance_continues_the_running_total() -> None:
    # Day 1: 1,000 fen × 500 ppm = 0.5 fen → total 0.5 → 0 posted.
    # Day 2: 3,000 fen → +1.5 = 2.0 → 2 posted. Day 3: 0 balance → nothing, carry kept.
    # Day 4: 1,000 → 2.5 → half-even 2 → 0 posted.  Day 5: 1,000 → 3.0 → 1 posted.
    carry = None
    posts = []
    for balance_fen in (1_000, 3_000, 0, 1_000, 1_000):
        posted, carry = compute_carried_interest(carry, balance_fen, RATE_500_PPM, 1)
        posts.append(int(posted))
    assert posts == [0, 2, 0, 0, 1]
    assert sum(posts) == 3  # the exact total, 3.0 fen


def test_a_carry_moves_to_a_new_rate_denominator_rounding_down() -> None:
    # 0.5 fen over 1e6 is 1,825,000 over 3,650,000 (exact); 1/3 fen is not exact there.
    assert rescale_carry(AccrualCarry(500_000, 1_000_000), 3_650_000) == AccrualCarry(
        1_825_000, 3_650_000
    )
    assert rescale_carry(AccrualCarry(1, 3), 1_000_000) == AccrualCarry(333_333, 1_000_000)


def test_RevertWhen_a_carried_balance_is_negative() -> None:
    with pytest.raises(CreditNetValueError):
        compute_carried_interest(None, -1, RATE_500_PPM, 1)
