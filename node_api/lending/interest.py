"""Interest accrual: plain integer functions, one balance or a batch of them.

Every rate reduces to a daily rate written as an exact fraction
(`DailyRate(numerator, denominator)`): a daily ppm rate is `ppm / 1,000,000`, an
annual bps rate is `bps / (10,000 × days in the day-count year)`. Interest is then
`balance × numerator × days / denominator`, rounded half-even to the fen exactly once,
so the same formula can later run set-based (SQL or arrays) without floats.

Accrual days run from the start date (inclusive) to the end date (exclusive): the
actual number of calendar days between them, whatever the day count; the day count
only decides the length of the year an annual rate is divided by.

Daily accrual (end of day) carries what rounding left over: a line's component (its
interest, its penalty interest) keeps its exact running total and every day posts the
change of that total rounded half-even, so N days of accrual post exactly the interest
of the N days rounded once (`compute_carried_interest`), never drifting by half a fen a
day. Half-even rounding does not change when 2 fen are added, so only the running total
modulo 2 fen is kept: `AccrualCarry.remainder / AccrualCarry.denominator` fen, in [0, 2).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import NamedTuple

from node_api.kernel.errors import CreditNetValueError
from node_api.kernel.money import (
    BPS_DENOMINATOR,
    PPM_DENOMINATOR,
    Bps,
    Fen,
    PpmPerDay,
    div_floor,
    div_half_even,
)
from node_api.ledger.settlement_events import DayCount, InterestMethod, get_days_in_year


class DailyRate(NamedTuple):
    """A daily interest rate as the exact fraction numerator / denominator."""

    numerator: int
    denominator: int


def compute_daily_rate(method: InterestMethod, rate: int, day_count: DayCount) -> DailyRate:
    """The exact daily rate of a product rate stated as daily ppm or annual bps.

    `rate` is in ppm per day for `DAILY_PPM` (the day count does not apply) and in
    bps per year for `APR_BPS` (divided by the day-count year).
    """
    if rate < 0:
        raise CreditNetValueError("an interest rate cannot be negative", field="rate")
    if method is InterestMethod.DAILY_PPM:
        return DailyRate(rate, PPM_DENOMINATOR)
    return DailyRate(rate, BPS_DENOMINATOR * get_days_in_year(day_count))


def compute_accrual_days(start_date: date, end_date: date) -> int:
    """Days of accrual from `start_date` (inclusive) to `end_date` (exclusive)."""
    days = (end_date - start_date).days
    if days < 0:
        raise CreditNetValueError("accrual end date is before its start date", field="end_date")
    return days


def compute_interest(balance_fen: int, daily_rate: DailyRate, days: int) -> Fen:
    """Interest on a constant balance for `days` days, rounded half-even once.

    Rounding once over the whole period (not once per day) keeps a period quote
    within half a fen of the exact figure.
    """
    if balance_fen < 0:
        raise CreditNetValueError(
            "an interest-bearing balance cannot be negative", field="balance_fen"
        )
    if days < 0:
        raise CreditNetValueError("accrual days cannot be negative", field="days")
    numerator = balance_fen * daily_rate.numerator * days
    return Fen(div_half_even(numerator, daily_rate.denominator))


class AccrualCarry(NamedTuple):
    """A component's running exact accrual total modulo 2 fen: `remainder / denominator`
    fen, 0 ≤ remainder < 2 × denominator (the denominator is the daily rate's)."""

    remainder: int
    denominator: int


NO_CARRY_REMAINDER = 0
"""The remainder of a component that has never accrued."""


def rescale_carry(carry: AccrualCarry, denominator: int) -> AccrualCarry:
    """The carry over another rate denominator (the line's rate changed its unit), rounded
    down: the running total loses less than 1 / `denominator` of a fen, once."""
    if denominator <= 0:
        raise CreditNetValueError("a rate denominator must be positive", field="denominator")
    if carry.denominator == denominator:
        return carry
    return AccrualCarry(div_floor(carry.remainder * denominator, carry.denominator), denominator)


def compute_carried_interest(
    carry: AccrualCarry | None, balance_fen: int, daily_rate: DailyRate, days: int
) -> tuple[Fen, AccrualCarry]:
    """Interest to post for `days` more days on `balance_fen`, and the carry after them.

    With T the running exact total in fen before and T' after, the post is
    half_even(T') − half_even(T): whatever the balances were, the posts so far add up to
    the running total rounded half-even once. Only T modulo 2 fen is needed (see the
    module docstring); `None` is a component that never accrued (T = 0).
    """
    if balance_fen < 0:
        raise CreditNetValueError(
            "an interest-bearing balance cannot be negative", field="balance_fen"
        )
    if days < 0:
        raise CreditNetValueError("accrual days cannot be negative", field="days")
    denominator = daily_rate.denominator
    before = NO_CARRY_REMAINDER if carry is None else rescale_carry(carry, denominator).remainder
    after = before + balance_fen * daily_rate.numerator * days
    posted_fen = div_half_even(after, denominator) - div_half_even(before, denominator)
    return Fen(posted_fen), AccrualCarry(after % (2 * denominator), denominator)


def compute_daily_interest_ppm(balance_fen: int, rate_ppm_per_day: PpmPerDay) -> Fen:
    """One day of interest at a daily ppm rate: balance × ppm / 1,000,000, half-even."""
    return compute_interest(balance_fen, DailyRate(rate_ppm_per_day, PPM_DENOMINATOR), 1)


def compute_daily_interest_apr(
    balance_fen: int, rate_bps: Bps, day_count: DayCount = DayCount.ACT_365
) -> Fen:
    """One day of interest at an annual bps rate: balance × bps / 10,000 / year, half-even."""
    daily_rate = compute_daily_rate(InterestMethod.APR_BPS, rate_bps, day_count)
    return compute_interest(balance_fen, daily_rate, 1)


def compute_interest_between(
    balance_fen: int, daily_rate: DailyRate, start_date: date, end_date: date
) -> Fen:
    """Interest on a constant balance from `start_date` (inclusive) to `end_date` (exclusive)."""
    return compute_interest(balance_fen, daily_rate, compute_accrual_days(start_date, end_date))


def compute_penalty_interest(
    overdue_fen: int, penalty_rate_ppm_per_day: PpmPerDay, days: int
) -> Fen:
    """Penalty interest on an overdue amount for `days` days at a daily ppm rate, half-even.

    Penalty interest is a separate charge from contractual interest: it runs on the
    overdue amount only and at the product's penalty rate.
    """
    return compute_interest(overdue_fen, DailyRate(penalty_rate_ppm_per_day, PPM_DENOMINATOR), days)


def compute_interest_batch(
    balances_fen: Sequence[int], daily_rates: Sequence[DailyRate], days: int = 1
) -> list[int]:
    """`compute_interest` over parallel sequences, for end-of-day batches of lines.

    The formula is the same integer expression per element, so a set-based SQL or array
    implementation can be checked against this one element for element.
    """
    if len(balances_fen) != len(daily_rates):
        raise CreditNetValueError("balances and rates differ in length", field="daily_rates")
    return [
        compute_interest(balance, rate, days)
        for balance, rate in zip(balances_fen, daily_rates, strict=True)
    ]
