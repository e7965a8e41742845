"""All-in cost of credit: the IRR of the borrower's cash flows, annualised, in bps.

Cash flows, seen from the borrower, one per month:
- t0: the financed amount minus the upfront (origination) fee, received;
- t1..tn: each installment paid: principal + interest + flat monthly fee + the fixed
  installment fee.
Late fees, penalty interest and the early repayment fee are contingent and not in the
all-in cost. Periods are whole months, as in the schedules.

The monthly IRR r is found by bisection on exact integers (r = a / 2^bits, every net
present value evaluated without rounding) until both annual figures below are decided,
then reported rounded half-even to 1 bps:
- nominal: r × 12;
- effective: (1 + r)^12 − 1.
These are display figures; the cost cap is decided exactly, and on real payment dates
when a plan is booked, in `cost_cap`.
No float is used anywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from node_api.kernel.money import BPS_DENOMINATOR, Bps, Fen, div_half_even
from node_api.lending.interest import compute_daily_rate
from node_api.lending.products.model import (
    FeeTerms,
    InterestTerms,
    InvalidProductError,
    ProductTerms,
)
from node_api.lending.schedules import compute_amortization

MONTHS_PER_YEAR = 12
DAYS_PER_CALENDAR_YEAR = 365
_START_BITS = 48
_REFINE_BITS = 32
_MAX_BITS = 1_024


@dataclass(frozen=True, slots=True)
class AnnualRates:
    """An annualised rate, nominal (monthly × 12) and effective (compounded monthly)."""

    nominal_bps: Bps
    effective_bps: Bps


@dataclass(frozen=True, slots=True)
class AllInCost:
    """The all-in cost of one sample plan and the cash flows it was computed from."""

    principal_fen: Fen
    tenor_months: int
    upfront_fee_fen: Fen
    cash_flows_fen: tuple[Fen, ...]
    """Borrower's view: index 0 received (positive), then each month paid (negative)."""
    rates: AnnualRates

    @property
    def nominal_annual_bps(self) -> Bps:
        return self.rates.nominal_bps

    @property
    def effective_annual_bps(self) -> Bps:
        return self.rates.effective_bps


def compute_upfront_fee(fees: FeeTerms, principal_fen: int) -> Fen:
    """The origination fee: principal × bps / 10,000 half-even, or the fixed amount."""
    return Fen(
        div_half_even(principal_fen * fees.origination_fee_bps, BPS_DENOMINATOR)
        + fees.origination_fee_fixed_fen
    )


def compute_all_in_apr(
    terms: ProductTerms, sample_principal_fen: Fen, tenor_months: int
) -> AllInCost:
    """The all-in annual cost of financing `sample_principal_fen` over `tenor_months`."""
    installment = terms.installment
    lines = compute_amortization(
        sample_principal_fen,
        tenor_months,
        installment.pricing_method,
        installment.rate_bps,
        terms.fees.installment_fee_fen,
    )
    upfront_fee_fen = compute_upfront_fee(terms.fees, sample_principal_fen)
    net_disbursed_fen = Fen(sample_principal_fen - upfront_fee_fen)
    if net_disbursed_fen <= 0:
        raise InvalidProductError(
            "the origination fee takes the whole amount", field="fees.origination_fee_fixed_fen"
        )
    cash_flows = (net_disbursed_fen, *(Fen(-line.payment_fen) for line in lines))
    return AllInCost(
        principal_fen=sample_principal_fen,
        tenor_months=tenor_months,
        upfront_fee_fen=upfront_fee_fen,
        cash_flows_fen=cash_flows,
        rates=compute_annualised_irr(cash_flows),
    )


def compute_revolving_annual_rates(interest: InterestTerms) -> AnnualRates:
    """The revolving rate annualised: nominal = daily rate × 365 (a calendar year of
    accrual, whatever the day count); effective = (1 + nominal / 12)^12 − 1, because an
    unpaid bill's interest joins the next bill's balance monthly. Half-even to 1 bps."""
    daily = compute_daily_rate(interest.method, interest.rate, interest.day_count)
    nominal_bps = div_half_even(
        BPS_DENOMINATOR * DAYS_PER_CALENDAR_YEAR * daily.numerator, daily.denominator
    )
    period_denominator = MONTHS_PER_YEAR * daily.denominator
    growth = period_denominator + DAYS_PER_CALENDAR_YEAR * daily.numerator
    effective_numerator = BPS_DENOMINATOR * (
        growth**MONTHS_PER_YEAR - period_denominator**MONTHS_PER_YEAR
    )
    effective_bps = div_half_even(effective_numerator, period_denominator**MONTHS_PER_YEAR)
    return AnnualRates(Bps(nominal_bps), Bps(effective_bps))


def compute_annualised_irr(cash_flows_fen: Sequence[int]) -> AnnualRates:
    """Nominal and effective annual rates of monthly cash flows, half-even to 1 bps.

    The flows must start with the amount received (positive) followed by payments
    (zero or negative, at least one), so the net present value rises with the rate and
    the root is unique. The bracket [lo, hi] around the monthly IRR is narrowed until
    both figures round the same at its two ends. A root lying exactly on a half-bps
    nominal boundary is detected (the NPV there is exactly zero) and rounded half-even.
    An exact half-bps tie of the effective figure would need a rational twelfth root;
    should one ever occur, after 1,024 bits the figure at the lower end is reported.
    """
    _check_cash_flows(cash_flows_fen)
    bits = _START_BITS
    if _npv_sign(cash_flows_fen, 0, 1) == 0:
        return AnnualRates(Bps(0), Bps(0))
    lo, hi = _bracket(cash_flows_fen, bits)
    while True:
        lo, hi = _bisect(cash_flows_fen, lo, hi, bits)
        rates_lo = _annual_rates(lo, 1 << bits)
        rates_hi = _annual_rates(hi, 1 << bits)
        if rates_lo == rates_hi or bits >= _MAX_BITS:
            return rates_lo
        if rates_lo.nominal_bps != rates_hi.nominal_bps:
            # The only nominal boundary inside [lo, hi] is hi's figure − 0.5 bps, which
            # is r = (2 × figure − 1) / 240,000: the root itself if the NPV is zero there.
            tie_numerator = 2 * rates_hi.nominal_bps - 1
            tie_denominator = 2 * MONTHS_PER_YEAR * BPS_DENOMINATOR
            if _npv_sign(cash_flows_fen, tie_numerator, tie_denominator) == 0:
                return _annual_rates(tie_numerator, tie_denominator)
        lo, hi, bits = lo << _REFINE_BITS, hi << _REFINE_BITS, bits + _REFINE_BITS


def _check_cash_flows(cash_flows_fen: Sequence[int]) -> None:
    if len(cash_flows_fen) < 2 or cash_flows_fen[0] <= 0:
        raise ValueError("cash flows must start with a positive amount received")
    if any(flow > 0 for flow in cash_flows_fen[1:]):
        raise ValueError("every flow after the first must be a payment (zero or negative)")
    if not any(flow < 0 for flow in cash_flows_fen[1:]):
        raise ValueError("cash flows must contain at least one payment")


def _npv_sign(cash_flows_fen: Sequence[int], rate_numerator: int, rate_denominator: int) -> int:
    """Sign of the NPV at the monthly rate r = rate_numerator / rate_denominator, exactly.

    With d = rate_denominator and q = d + rate_numerator (so 1 + r = q / d), Horner's
    rule gives Σ cf_k q^(n−k) d^k = d^n (1 + r)^n NPV(r): the NPV's sign, all integers.
    """
    growth = rate_denominator + rate_numerator
    accumulated = 0
    denominator_power = 1
    for flow in cash_flows_fen:
        accumulated = accumulated * growth + flow * denominator_power
        denominator_power *= rate_denominator
    return (accumulated > 0) - (accumulated < 0)


def _bracket(cash_flows_fen: Sequence[int], bits: int) -> tuple[int, int]:
    """(lo, hi) numerators over 2^bits with NPV(lo) ≤ 0 < NPV(hi)."""
    scale = 1 << bits
    if _npv_sign(cash_flows_fen, 0, scale) < 0:
        lo, hi = 0, scale
        while _npv_sign(cash_flows_fen, hi, scale) <= 0:
            lo, hi = hi, hi * 2
        return lo, hi
    lo, hi = -(scale // 2), 0
    while _npv_sign(cash_flows_fen, lo, scale) > 0 and lo > 1 - scale:
        hi, lo = lo, -scale + (scale + lo) // 2
    return lo, hi


def _bisect(cash_flows_fen: Sequence[int], lo: int, hi: int, bits: int) -> tuple[int, int]:
    """Narrow [lo, hi] to adjacent numerators over 2^bits, keeping NPV(lo) ≤ 0 < NPV(hi)."""
    scale = 1 << bits
    while hi - lo > 1:
        middle = (lo + hi) // 2
        if _npv_sign(cash_flows_fen, middle, scale) <= 0:
            lo = middle
        else:
            hi = middle
    return lo, hi


def _annual_rates(rate_numerator: int, rate_denominator: int) -> AnnualRates:
    """Nominal (12 r) and effective ((1 + r)^12 − 1) of r = numerator / denominator, in bps."""
    nominal_bps = div_half_even(
        MONTHS_PER_YEAR * BPS_DENOMINATOR * rate_numerator, rate_denominator
    )
    denominator_year = rate_denominator**MONTHS_PER_YEAR
    growth_year = (rate_denominator + rate_numerator) ** MONTHS_PER_YEAR
    effective_bps = div_half_even(
        BPS_DENOMINATOR * (growth_year - denominator_year), denominator_year
    )
    return AnnualRates(Bps(nominal_bps), Bps(effective_bps))
