"""Properties of the exact rounding of issue 15: carried daily accrual, largest-remainder
funding shares, and the cost cap decided exactly (Hypothesis).

Expected values are recomputed here independently: exact fractions (`Fraction`) for
accrual and shares, 80-digit decimals for the cost's monthly rate.
"""

from __future__ import annotations

from decimal import Decimal, getcontext
from fractions import Fraction

from hypothesis import assume, given
from hypothesis import strategies as st

from node_api.lending.core.entries import compute_funded_split
from node_api.lending.interest import AccrualCarry, DailyRate, compute_carried_interest
from node_api.lending.products import FundingShare
from node_api.lending.products.cost_cap import (
    Annualization,
    TimedFlow,
    compute_annual_bps,
    is_unbounded,
    is_within_cap,
)

RATES = st.one_of(
    st.builds(DailyRate, st.integers(0, 5_000), st.just(1_000_000)),
    st.builds(DailyRate, st.integers(0, 36_000), st.sampled_from([3_650_000, 3_600_000])),
)


def _half_even(value: Fraction) -> int:
    return round(value)  # Fraction.__round__ rounds half to even, exactly


@given(RATES, st.lists(st.tuples(st.integers(0, 10**9), st.integers(0, 3)), max_size=60))
def test_carried_daily_posts_sum_to_the_running_total_rounded_once(
    rate: DailyRate, days: list[tuple[int, int]]
) -> None:
    carry: AccrualCarry | None = None
    posted_fen = 0
    exact = Fraction(0)
    for balance_fen, count in days:
        post, carry = compute_carried_interest(carry, balance_fen, rate, count)
        assert post >= 0
        posted_fen += post
        exact += Fraction(balance_fen * rate.numerator * count, rate.denominator)
        assert posted_fen == _half_even(exact)
        assert carry is not None and 0 <= carry.remainder < 2 * carry.denominator


@given(st.integers(0, 10**12), st.lists(st.integers(1, 10**6), min_size=1, max_size=6))
def test_funding_shares_sum_to_the_principal_and_each_is_within_a_fen(
    principal_fen: int, weights: list[int]
) -> None:
    total = sum(weights)
    ppm = [weight * 1_000_000 // total for weight in weights]
    ppm[0] += 1_000_000 - sum(ppm)
    assume(all(share > 0 for share in ppm))
    shares = [
        FundingShare(partner_id=f"p{index:02d}", share_ppm=share, funder_rate_bps=0)
        for index, share in enumerate(ppm)
    ]
    split = compute_funded_split(principal_fen, shares)
    assert sum(split.values()) == principal_fen
    for share in shares:
        exact = Fraction(principal_fen * share.share_ppm, 1_000_000)
        assert exact - 1 < split[share.partner_id] < exact + 1


getcontext().prec = 80


def _npv(flows: list[TimedFlow], rate: Decimal) -> Decimal:
    return sum(
        (
            Decimal(flow.amount_fen) / ((1 + rate) ** flow.months * (1 + rate * flow.odd_days / 30))
            for flow in flows
        ),
        Decimal(0),
    )


def _monthly_cap(cap_bps: int, annualization: Annualization) -> Decimal:
    if annualization is Annualization.NOMINAL:
        return Decimal(cap_bps) / 120_000
    return (1 + Decimal(cap_bps) / 10_000) ** (Decimal(1) / 12) - 1


FLOWS = st.lists(
    st.tuples(st.integers(0, 24), st.integers(0, 30), st.integers(0, 10**6)),
    min_size=1,
    max_size=12,
)


@given(st.integers(1, 10**8), FLOWS, st.integers(0, 20_000), st.sampled_from(Annualization))
def test_the_cap_decision_matches_the_npv_sign_at_the_caps_monthly_rate(
    received_fen: int,
    payments: list[tuple[int, int, int]],
    cap_bps: int,
    annualization: Annualization,
) -> None:
    flows = [TimedFlow(0, 0, received_fen)] + [
        TimedFlow(months, odd_days, -paid) for months, odd_days, paid in payments
    ]
    assume(any(flow.amount_fen < 0 for flow in flows[1:]))
    if is_unbounded(flows):
        assert not is_within_cap(flows, cap_bps, annualization)
        return
    npv = _npv(flows, _monthly_cap(cap_bps, annualization))
    assume(abs(npv) > Decimal(10) ** -40)  # ties are the unit tests' business
    assert is_within_cap(flows, cap_bps, annualization) == (npv > 0)


@given(st.integers(10**6, 10**8), FLOWS, st.sampled_from(Annualization))
def test_the_stated_figure_is_the_smallest_whole_bps_within(
    received_fen: int, payments: list[tuple[int, int, int]], annualization: Annualization
) -> None:
    flows = [TimedFlow(0, 0, received_fen)] + [
        TimedFlow(months, odd_days, -paid) for months, odd_days, paid in payments
    ]
    assume(any(flow.amount_fen < 0 for flow in flows[1:]) and not is_unbounded(flows))
    figure = compute_annual_bps(flows, annualization)
    assert is_within_cap(flows, figure, annualization)
    assert figure == 0 or not is_within_cap(flows, figure - 1, annualization)
