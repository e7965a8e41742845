"""The all-in cost cap, decided exactly: for a product when it is published and for every
obligation when it is booked (plan conversions, cash drawdowns).

Annual rate. The borrower's cash flows (what it receives, positive; each payment,
negative; each on its date) have one monthly internal rate of return r, annualised as
the node chooses (`Annualization`): nominal = 12 r, what disclosures commonly state, or
effective = (1 + r)^12 − 1, stricter. Every quote says which.

Dates. A flow's time from the start is whole calendar months (`compute_monthly_date`,
counted forward from the start) plus odd days, which count as odd / 30 of a month at
simple interest (the convention of Regulation Z, Appendix J): a flow is discounted by
(1 + r)^months × (1 + r × odd days / 30). A schedule paid monthly from its start has no
odd days; a first period shorter or longer than a month costs what its days cost.

Exact decision. The net present value of the flows rises with r (one amount received
first, then payments), so the cost is within a cap exactly when the NPV at the cap's
monthly rate is ≥ 0. For a nominal cap of c bps that rate is c / 120,000. For an
effective cap it is (1 + c / 10,000)^(1/12) − 1, an irrational number in general: it is
bracketed between two dyadic rationals, narrowed until the NPV's sign at them decides.
A cost exactly at an effective cap (a 12-month bullet repaying 1 + c) never decides by
bracketing: when the first bracket does not decide, the NPV's numerator, a polynomial
in g = 1 + r, is reduced modulo the minimal polynomial of the cap's g (x^d − B, the
root of (1 + c)^(1/12) of lowest degree); a zero remainder is a cost exactly at the cap.
(After 1,024 bits an undecided cost counts as above the cap.) Everything is an integer
or an exact fraction: a cost above the cap by any amount never passes.

Stated figure. A quote's annual rate is the smallest whole bps k the cost is within
(the rate rounded up), so "figure ≤ cap" and "within the cap" always agree.

Rates without a schedule, checked for every product type: the daily interest rate and
the penalty rate annualise over 365 days (nominal = daily × 365; effective = (1 +
nominal / 12)^12 − 1, because unpaid interest joins the next bill monthly); a late fee of
at most `late_fee_cap_bps` of the unpaid minimum, charged once a bill (monthly), is a
monthly rate of that share. A late fee with no share cap (fixed only) has no rate the
product can bound: it is not checked here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from fractions import Fraction
from functools import lru_cache
from typing import Final

from node_api.kernel.errors import CreditNetValueError
from node_api.kernel.money import BPS_DENOMINATOR, PPM_DENOMINATOR, Fen, div_ceil
from node_api.ledger.settlement_events import DayCount, InterestMethod
from node_api.lending.billing_rules import compute_bill_date_on_or_after, compute_due_date
from node_api.lending.interest import DailyRate, compute_daily_rate, compute_interest
from node_api.lending.products.model import ProductTerms
from node_api.lending.schedules import compute_monthly_date

DEFAULT_COST_CAP_BPS: Final = 2_400
MONTHS_PER_YEAR: Final = 12
DAYS_PER_MONTH_FRACTION: Final = 30
"""Odd days are this many to a month (Regulation Z, Appendix J)."""
DAYS_PER_YEAR: Final = 365
_MONTHLY_BPS: Final = MONTHS_PER_YEAR * BPS_DENOMINATOR
_START_BITS: Final = 64
_REFINE_BITS: Final = 64
_MAX_BITS: Final = 1_024
_MAX_DOUBLINGS: Final = 256


class Annualization(StrEnum):
    """How a monthly rate becomes the annual rate compared with the cap."""

    NOMINAL = "nominal"
    """12 × the monthly rate."""
    EFFECTIVE = "effective"
    """(1 + the monthly rate)^12 − 1."""


@dataclass(frozen=True, slots=True)
class CostCap:
    """The node's cap and how it annualises (`CREDITNET_PRODUCT_COST_CAP_BPS`,
    `CREDITNET_COST_CAP_ANNUALIZATION`)."""

    cap_bps: int = DEFAULT_COST_CAP_BPS
    annualization: Annualization = Annualization.EFFECTIVE


class CostCapExceededError(CreditNetValueError):
    """An obligation (or a rate of its product) whose annual cost is above the cap."""

    code = "cost_cap_exceeded"


@dataclass(frozen=True, slots=True)
class DatedFlow:
    """One cash flow seen from the borrower: received (+) or paid (−), on a date."""

    on: date
    amount_fen: Fen


@dataclass(frozen=True, slots=True)
class TimedFlow:
    """A flow `months` whole months and `odd_days` days after the start."""

    months: int
    odd_days: int
    amount_fen: Fen


def compute_flow_time(start: date, on: date) -> tuple[int, int]:
    """(whole months, odd days) from `start` to `on`, months counted forward first."""
    if on < start:
        raise CreditNetValueError("a cash flow is dated before the start", field="on")
    months = (on.year - start.year) * MONTHS_PER_YEAR + on.month - start.month
    while months > 0 and compute_monthly_date(start, months) > on:
        months -= 1
    return months, (on - compute_monthly_date(start, months)).days


def compute_timed_flows(start: date, flows: Sequence[DatedFlow]) -> tuple[TimedFlow, ...]:
    """Dated flows as times from `start` (see the module docstring)."""
    return tuple(TimedFlow(*compute_flow_time(start, flow.on), flow.amount_fen) for flow in flows)


def compute_monthly_flows(cash_flows_fen: Sequence[Fen]) -> tuple[TimedFlow, ...]:
    """Flow k exactly k months after the start (a schedule with no dates yet)."""
    return tuple(TimedFlow(months, 0, amount) for months, amount in enumerate(cash_flows_fen))


def _check_flows(flows: Sequence[TimedFlow]) -> None:
    if not flows or flows[0].amount_fen <= 0 or (flows[0].months, flows[0].odd_days) != (0, 0):
        raise CreditNetValueError("cash flows must start with an amount received", field="flows")
    if any(flow.amount_fen > 0 for flow in flows[1:]):
        raise CreditNetValueError("every later flow must be a payment", field="flows")


def _npv_sign(flows: Sequence[TimedFlow], numerator: int, denominator: int) -> int:
    """Sign of the NPV at the monthly rate numerator / denominator (≥ 0), exactly.

    With d = denominator, g = d + numerator and F_o = 30 d + o × numerator for each odd
    day count o, the NPV times g^M × Π F_o / 30 d (M the last month) is
    Σ cf × d^months × g^(M − months) × Π_{o ≠ its odd days} F_o: all integers, same sign.
    """
    growth = denominator + numerator
    last = max(flow.months for flow in flows)
    factors = {
        flow.odd_days: DAYS_PER_MONTH_FRACTION * denominator + flow.odd_days * numerator
        for flow in flows
    }
    total = 0
    for flow in flows:
        others = 1
        for odd_days, factor in factors.items():
            if odd_days != flow.odd_days:
                others *= factor
        total += (
            flow.amount_fen * denominator**flow.months * growth ** (last - flow.months) * others
        )
    return (total > 0) - (total < 0)


@lru_cache(maxsize=1_024)
def _effective_root(cap_bps: int, bits: int) -> tuple[int, bool]:
    """(x, exact): x = ⌊2^bits × (1 + cap / 10,000)^(1/12)⌋, exact when x is the root."""
    target = (BPS_DENOMINATOR + cap_bps) << (MONTHS_PER_YEAR * bits)
    low = 1 << bits
    high = div_ceil((BPS_DENOMINATOR + cap_bps) << bits, BPS_DENOMINATOR) + 1
    while high - low > 1:
        middle = (low + high) // 2
        if middle**MONTHS_PER_YEAR * BPS_DENOMINATOR <= target:
            low = middle
        else:
            high = middle
    return low, low**MONTHS_PER_YEAR * BPS_DENOMINATOR == target


def _integer_root(value: int, degree: int) -> int | None:
    """The integer `degree`-th root of `value` ≥ 0 when it is one, else None."""
    low, high = 0, 1 << (value.bit_length() // degree + 1)
    while high - low > 1:
        middle = (low + high) // 2
        if middle**degree <= value:
            low = middle
        else:
            high = middle
    return low if low**degree == value else None


def _cap_minimal_polynomial(cap_bps: int) -> tuple[int, Fraction]:
    """(d, B): x^d − B is the minimal polynomial of g = (1 + cap / 10,000)^(1/12)."""
    growth = Fraction(BPS_DENOMINATOR + cap_bps, BPS_DENOMINATOR)
    for power in (12, 6, 4, 3, 2):
        numerator = _integer_root(growth.numerator, power)
        denominator = _integer_root(growth.denominator, power)
        if numerator is not None and denominator is not None:
            return MONTHS_PER_YEAR // power, Fraction(numerator, denominator)
    return MONTHS_PER_YEAR, growth


def _npv_polynomial(flows: Sequence[TimedFlow]) -> list[int]:
    """The NPV's numerator as integer coefficients of g = 1 + r (index = power): the NPV
    times g^M × Π (30 + o (g − 1)) / 30 over the odd day counts o (see `_npv_sign`)."""
    last = max(flow.months for flow in flows)
    odd_counts = sorted({flow.odd_days for flow in flows})
    total = [0] * (last + len(odd_counts) + 1)
    for flow in flows:
        poly = [0] * (last - flow.months) + [flow.amount_fen]
        for odd_days in odd_counts:
            if odd_days != flow.odd_days:
                factor = (DAYS_PER_MONTH_FRACTION - odd_days, odd_days)
                poly = [
                    (poly[k] if k < len(poly) else 0) * factor[0]
                    + (poly[k - 1] if k >= 1 else 0) * factor[1]
                    for k in range(len(poly) + 1)
                ]
        for power, coefficient in enumerate(poly):
            total[power] += coefficient
    return total


def _is_exactly_at_effective_cap(flows: Sequence[TimedFlow], cap_bps: int) -> bool:
    """Whether the NPV is exactly zero at the effective cap's monthly rate."""
    degree, constant = _cap_minimal_polynomial(cap_bps)
    reduced = [Fraction(0)] * degree
    for power, coefficient in enumerate(_npv_polynomial(flows)):
        reduced[power % degree] += coefficient * constant ** (power // degree)
    return not any(reduced)


def is_within_cap(flows: Sequence[TimedFlow], cap_bps: int, annualization: Annualization) -> bool:
    """Whether the flows' annual cost is at most `cap_bps`, decided exactly."""
    _check_flows(flows)
    if cap_bps < 0:
        raise CreditNetValueError("the cap cannot be negative", field="cap_bps")
    if is_unbounded(flows):
        return False
    if annualization is Annualization.NOMINAL:
        return _npv_sign(flows, cap_bps, _MONTHLY_BPS) >= 0
    bits = _START_BITS
    while bits <= _MAX_BITS:
        root, exact = _effective_root(cap_bps, bits)
        below = root - (1 << bits)
        if _npv_sign(flows, below, 1 << bits) >= 0:
            return True
        if exact or _npv_sign(flows, below + 1, 1 << bits) < 0:
            return False
        if bits == _START_BITS and _is_exactly_at_effective_cap(flows, cap_bps):
            return True
        bits += _REFINE_BITS
    return False


def is_unbounded(flows: Sequence[TimedFlow]) -> bool:
    """Whether no rate at all makes the NPV ≥ 0: what is paid on the first day is more
    than what is received (or as much, with more to pay later)."""
    at_start = sum(flow.amount_fen for flow in flows if (flow.months, flow.odd_days) == (0, 0))
    later = any(flow.amount_fen < 0 and (flow.months, flow.odd_days) != (0, 0) for flow in flows)
    return at_start < 0 or (at_start == 0 and later)


def compute_annual_bps(flows: Sequence[TimedFlow], annualization: Annualization) -> int:
    """The flows' annual cost in whole bps, rounded up: the smallest k within `k` bps.

    Raises CreditNetValueError (code `cost_unbounded`) when no rate is high enough."""
    _check_flows(flows)
    if is_within_cap(flows, 0, annualization):
        return 0
    low, high = 0, DEFAULT_COST_CAP_BPS
    for _ in range(_MAX_DOUBLINGS):
        if is_unbounded(flows) or is_within_cap(flows, high, annualization):
            break
        low, high = high, high * 2
    if is_unbounded(flows) or not is_within_cap(flows, high, annualization):
        raise CreditNetValueError(
            "the cost has no annual rate: more is paid on the first day than is received, "
            "or the rate is beyond any figure",
            field="flows",
            code="cost_unbounded",
        )
    while high - low > 1:
        middle = (low + high) // 2
        if is_within_cap(flows, middle, annualization):
            high = middle
        else:
            low = middle
    return high


def _is_monthly_rate_within(
    numerator: int, denominator: int, cap_bps: int, annualization: Annualization
) -> bool:
    """Whether a monthly rate numerator / denominator annualises to at most `cap_bps`."""
    if annualization is Annualization.NOMINAL:
        return MONTHS_PER_YEAR * BPS_DENOMINATOR * numerator <= cap_bps * denominator
    grown = (denominator + numerator) ** MONTHS_PER_YEAR * BPS_DENOMINATOR
    return grown <= (BPS_DENOMINATOR + cap_bps) * denominator**MONTHS_PER_YEAR


def _monthly_rate_bps(numerator: int, denominator: int, annualization: Annualization) -> int:
    """A monthly rate numerator / denominator annualised, in bps rounded up."""
    if annualization is Annualization.NOMINAL:
        return div_ceil(MONTHS_PER_YEAR * BPS_DENOMINATOR * numerator, denominator)
    year = denominator**MONTHS_PER_YEAR
    grown = (denominator + numerator) ** MONTHS_PER_YEAR
    return div_ceil(BPS_DENOMINATOR * (grown - year), year)


def _daily_as_monthly(daily: DailyRate) -> tuple[int, int]:
    """A daily rate's month: daily × 365 / 12, as numerator and denominator."""
    return DAYS_PER_YEAR * daily.numerator, MONTHS_PER_YEAR * daily.denominator


@dataclass(frozen=True, slots=True)
class RateCost:
    """One of a product's rates annualised both ways (bps, rounded up), and whether it is
    within the cap in the cap's own annualization."""

    field: str
    what: str
    nominal_bps: int
    effective_bps: int
    within: bool


def _product_monthly_rates(terms: ProductTerms) -> tuple[tuple[str, str, tuple[int, int]], ...]:
    """(field, what, monthly rate as numerator and denominator) of each rate a product
    charges without a schedule."""
    interest = terms.interest
    return _monthly_rates(
        interest.method,
        interest.rate,
        interest.day_count,
        terms.penalty_rate_ppm_per_day,
        terms.fees.late_fee_cap_bps,
    )


@lru_cache(maxsize=1_024)
def _monthly_rates(
    method: InterestMethod,
    rate: int,
    day_count: DayCount,
    penalty_rate_ppm_per_day: int,
    late_fee_cap_bps: int,
) -> tuple[tuple[str, str, tuple[int, int]], ...]:
    """`_product_monthly_rates` of the terms it reads (remembered: it runs on every
    booking, and a product's rates are a handful of integers)."""
    daily = compute_daily_rate(method, rate, day_count)
    rates = [
        ("interest.rate", "the interest rate", _daily_as_monthly(daily)),
        (
            "penalty_rate_ppm_per_day",
            "the penalty rate",
            _daily_as_monthly(DailyRate(penalty_rate_ppm_per_day, PPM_DENOMINATOR)),
        ),
    ]
    if late_fee_cap_bps:
        rates.append(
            (
                "fees.late_fee_cap_bps",
                "the late fee (at most this share of the unpaid minimum, once a bill)",
                (late_fee_cap_bps, BPS_DENOMINATOR),
            )
        )
    return tuple(rates)


def compute_product_rate_costs(terms: ProductTerms, cap: CostCap) -> tuple[RateCost, ...]:
    """The interest, penalty and late-fee rates of a product against the cap."""
    return tuple(
        RateCost(
            field,
            what,
            _monthly_rate_bps(numerator, denominator, Annualization.NOMINAL),
            _monthly_rate_bps(numerator, denominator, Annualization.EFFECTIVE),
            _is_monthly_rate_within(numerator, denominator, cap.cap_bps, cap.annualization),
        )
        for field, what, (numerator, denominator) in _product_monthly_rates(terms)
    )


@lru_cache(maxsize=4_096)
def _are_rates_within(
    rates: tuple[tuple[str, str, tuple[int, int]], ...], cap_bps: int, annualization: Annualization
) -> bool:
    return all(
        _is_monthly_rate_within(numerator, denominator, cap_bps, annualization)
        for _, _, (numerator, denominator) in rates
    )


def format_bps_as_percent(rate_bps: int) -> str:
    """2,417 bps → '24.17%' (exact; for messages only)."""
    sign = "-" if rate_bps < 0 else ""
    whole, hundredths = divmod(abs(rate_bps), 100)
    return f"{sign}{whole}.{hundredths:02d}%"


def check_product_rates(
    terms: ProductTerms,
    cap: CostCap,
    error_type: type[CostCapExceededError] = CostCapExceededError,
) -> None:
    """Refuse a product whose interest, penalty or late-fee rate is above the cap (the
    answer is remembered per rates and cap: this runs on every booking)."""
    if _are_rates_within(_product_monthly_rates(terms), cap.cap_bps, cap.annualization):
        return
    for rate in compute_product_rate_costs(terms, cap):
        if not rate.within:
            annual_bps = (
                rate.nominal_bps
                if cap.annualization is Annualization.NOMINAL
                else rate.effective_bps
            )
            raise error_type(
                f"{rate.what} of {terms.product_code} v{terms.version} annualises to "
                f"{format_bps_as_percent(annual_bps)} {cap.annualization.value} "
                f"({annual_bps} bps, rounded up), above the cap of "
                f"{format_bps_as_percent(cap.cap_bps)}",
                field=rate.field,
                computed_bps=annual_bps,
                nominal_bps=rate.nominal_bps,
                cap_bps=cap.cap_bps,
                annualization=cap.annualization.value,
            )


@dataclass(frozen=True, slots=True)
class ObligationCost:
    """An obligation's all-in cost on its payment dates: the flows, the annual figure
    (bps, rounded up) in the cap's annualization, and whether it is within the cap."""

    start: date
    flows: tuple[DatedFlow, ...]
    annualization: Annualization
    annual_bps: int
    cap_bps: int

    @property
    def within_cap(self) -> bool:
        return self.annual_bps <= self.cap_bps


def compute_obligation_cost(
    start: date, flows: Sequence[DatedFlow], cap: CostCap
) -> ObligationCost:
    """The all-in cost of dated flows (the figure needs a search: for quotes and refusals;
    `check_obligation_cost` decides with one or two evaluations)."""
    timed = compute_timed_flows(start, flows)
    return ObligationCost(
        start, tuple(flows), cap.annualization, compute_annual_bps(timed, cap.annualization),
        cap.cap_bps,
    )  # fmt: skip


def check_obligation_cost(
    start: date, flows: Sequence[DatedFlow], cap: CostCap, *, field: str, what: str
) -> None:
    """Refuse an obligation whose all-in cost on its payment dates is above the cap."""
    timed = compute_timed_flows(start, flows)
    if not is_unbounded(timed) and is_within_cap(timed, cap.cap_bps, cap.annualization):
        return
    try:
        annual_bps: int | None = compute_annual_bps(timed, cap.annualization)
        figure = f"{format_bps_as_percent(annual_bps or 0)} ({annual_bps} bps, rounded up)"
    except CreditNetValueError:
        annual_bps, figure = None, "unbounded (more is due on its first day than it lends)"
    raise CostCapExceededError(
        f"the all-in {cap.annualization.value} annual cost of {what} is {figure}, "
        f"above the cap of {format_bps_as_percent(cap.cap_bps)}",
        field=field,
        computed_bps=annual_bps,
        cap_bps=cap.cap_bps,
        annualization=cap.annualization.value,
    )


def compute_plan_flows(
    start: date,
    principal_fen: Fen,
    upfront_fee_fen: Fen,
    payments: Sequence[tuple[date, Fen]],
) -> tuple[DatedFlow, ...]:
    """A plan's flows: the principal less any upfront fee received at the start, then each
    installment's payment on its due date."""
    received = DatedFlow(start, Fen(principal_fen - upfront_fee_fen))
    return (received, *(DatedFlow(on, Fen(-payment_fen)) for on, payment_fen in payments))


def compute_drawdown_flows(
    terms: ProductTerms, amount_fen: int, fee_fen: Fen, as_of: date, bill_day: int
) -> tuple[DatedFlow, ...]:
    """A cash drawdown as its contract has it: the amount received on `as_of`, then the
    amount, its fee and its interest (at the product's rate for every day, as if no
    interest-free period applied) paid on the due date of the bill it lands on."""
    due = compute_due_date(
        compute_bill_date_on_or_after(as_of, bill_day), terms.due_date_offset_days
    )
    interest = terms.interest
    daily = compute_daily_rate(interest.method, interest.rate, interest.day_count)
    interest_fen = compute_interest(amount_fen, daily, (due - as_of).days)
    paid_fen = Fen(-(amount_fen + fee_fen + interest_fen))
    return DatedFlow(as_of, Fen(amount_fen)), DatedFlow(due, paid_fen)
