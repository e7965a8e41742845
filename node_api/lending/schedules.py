"""Installment schedules, exact to the fen, and the payoff quotes that end them early.

Three pricing methods, all with monthly periods (every period counts as one twelfth
of a year, whatever its calendar length; there is no broken first period):

- annuity (equal installment): the payment is the annuity formula
  P·r / (1 − (1 + r)^−n), r = annual bps / 12 / 10,000, computed exactly and rounded
  half-even to the fen. Each period's interest is balance × r rounded half-even and its
  principal part is payment − interest. The LAST installment absorbs the rounding
  remainder: its principal part is whatever principal is still outstanding, so the
  principal parts sum exactly to the financed amount and its payment may differ from
  the others by a few fen.
- equal principal: principal part = P // n (rounded down); the remainder P mod n goes
  to the FIRST installment. Interest is the outstanding balance × r, half-even.
- flat monthly fee: principal parts as for equal principal; no interest; each
  installment carries a fee of P × fee bps / 10,000 (half-even) on the ORIGINAL
  principal.

A fixed per-installment fee (`installment_fee_fen`) is added to every installment's fee.

Due dates fall monthly on the day of month of `first_due_date`. When a month is
shorter than that day, the date clamps to the month's last day; every date is computed
from the anchor, not from the previous date, so 31 Jan → 28/29 Feb → 31 Mar.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from node_api.kernel.errors import ConflictError, CreditNetValueError
from node_api.kernel.money import BPS_DENOMINATOR, FEN_ZERO, Fen, div_half_even
from node_api.ledger.settlement_events import DayCount, InterestMethod
from node_api.lending.interest import compute_daily_rate, compute_interest

MONTHS_PER_YEAR = 12
MONTHLY_BPS_DENOMINATOR = MONTHS_PER_YEAR * BPS_DENOMINATOR
TENOR_MONTHS_MAX = 360


class PricingMethod(StrEnum):
    """How an installment plan is priced."""

    ANNUITY = "annuity"
    """Equal installments; `rate_bps` is the nominal annual rate."""
    EQUAL_PRINCIPAL = "equal_principal"
    """Equal principal parts, interest on the balance; `rate_bps` is the annual rate."""
    FLAT_MONTHLY_FEE = "flat_monthly_fee"
    """Equal principal parts plus a monthly fee; `rate_bps` is the monthly fee on the
    original principal."""


@dataclass(frozen=True, slots=True)
class AmortizationLine:
    """One period's split of a payment, before dates are attached."""

    principal_fen: Fen
    interest_fen: Fen
    fee_fen: Fen

    @property
    def payment_fen(self) -> Fen:
        return Fen(self.principal_fen + self.interest_fen + self.fee_fen)


@dataclass(frozen=True, slots=True)
class Installment:
    """One installment of a schedule. `balance_after_fen` is principal still owed after it."""

    number: int
    due_date: date
    principal_fen: Fen
    interest_fen: Fen
    fee_fen: Fen
    payment_fen: Fen
    balance_after_fen: Fen


@dataclass(frozen=True, slots=True)
class Schedule:
    """A full installment plan: inputs and installments, in due-date order."""

    principal_fen: Fen
    tenor_months: int
    method: PricingMethod
    rate_bps: int
    installment_fee_fen: Fen
    start_date: date
    first_due_date: date
    installments: tuple[Installment, ...]

    @property
    def total_principal_fen(self) -> Fen:
        return Fen(sum(item.principal_fen for item in self.installments))

    @property
    def total_interest_fen(self) -> Fen:
        return Fen(sum(item.interest_fen for item in self.installments))

    @property
    def total_fee_fen(self) -> Fen:
        return Fen(sum(item.fee_fen for item in self.installments))

    @property
    def total_payment_fen(self) -> Fen:
        return Fen(sum(item.payment_fen for item in self.installments))


def compute_monthly_date(anchor: date, months: int, day: int | None = None) -> date:
    """`anchor` moved by `months` calendar months, on `day` (default: the anchor's day of
    month), clamped to the target month's end."""
    month_index = anchor.month - 1 + months
    year = anchor.year + month_index // MONTHS_PER_YEAR
    month = month_index % MONTHS_PER_YEAR + 1
    day = min(anchor.day if day is None else day, calendar.monthrange(year, month)[1])
    return date(year, month, day)


def compute_due_dates(
    first_due_date: date, tenor_months: int, day: int | None = None
) -> tuple[date, ...]:
    """The monthly due dates of a plan, anchored on `first_due_date`'s day of month (or on
    `day`, a bill day the end-of-month rule may have moved the first date from)."""
    return tuple(compute_monthly_date(first_due_date, k, day) for k in range(tenor_months))


def compute_annuity_payment(principal_fen: Fen, tenor_months: int, annual_rate_bps: int) -> Fen:
    """The level payment P·r/(1 − (1+r)^−n), r = bps / 120,000, exact, rounded half-even.

    Written over integers as P·b·g^n / (120,000·(g^n − 120,000^n)) with g = 120,000 + b,
    so no intermediate value is ever rounded. A zero rate gives P / n, half-even.
    """
    _check_plan_inputs(principal_fen, tenor_months, annual_rate_bps)
    if annual_rate_bps == 0:
        return Fen(div_half_even(principal_fen, tenor_months))
    growth_n = (MONTHLY_BPS_DENOMINATOR + annual_rate_bps) ** tenor_months
    numerator = principal_fen * annual_rate_bps * growth_n
    denominator = MONTHLY_BPS_DENOMINATOR * (growth_n - MONTHLY_BPS_DENOMINATOR**tenor_months)
    return Fen(div_half_even(numerator, denominator))


def compute_amortization(
    principal_fen: Fen,
    tenor_months: int,
    method: PricingMethod,
    rate_bps: int,
    installment_fee_fen: Fen = FEN_ZERO,
) -> tuple[AmortizationLine, ...]:
    """Principal, interest and fee of every period; principal parts sum to `principal_fen`."""
    _check_plan_inputs(principal_fen, tenor_months, rate_bps)
    if installment_fee_fen < 0:
        raise CreditNetValueError("installment fee cannot be negative", field="installment_fee_fen")
    if method is PricingMethod.ANNUITY:
        lines = _amortize_annuity(principal_fen, tenor_months, rate_bps)
    elif method is PricingMethod.EQUAL_PRINCIPAL:
        lines = _amortize_equal_principal(principal_fen, tenor_months, rate_bps)
    else:
        lines = _amortize_flat_fee(principal_fen, tenor_months, rate_bps)
    if installment_fee_fen == 0:
        return lines
    return tuple(
        AmortizationLine(
            line.principal_fen, line.interest_fen, Fen(line.fee_fen + installment_fee_fen)
        )
        for line in lines
    )


def compute_schedule(
    principal_fen: Fen,
    tenor_months: int,
    method: PricingMethod,
    rate_bps: int,
    start_date: date,
    first_due_date: date,
    installment_fee_fen: Fen = FEN_ZERO,
    day: int | None = None,
) -> Schedule:
    """The dated schedule of a plan financed on `start_date`, first due on `first_due_date`.

    See the module docstring for the rounding of each method and which installment
    takes the remainder.
    """
    if first_due_date < start_date:
        raise CreditNetValueError(
            "the first due date is before the start date", field="first_due_date"
        )
    lines = compute_amortization(principal_fen, tenor_months, method, rate_bps, installment_fee_fen)
    balance_fen = principal_fen
    installments = []
    for number, (line, due_date) in enumerate(
        zip(lines, compute_due_dates(first_due_date, tenor_months, day), strict=True), start=1
    ):
        balance_fen = Fen(balance_fen - line.principal_fen)
        installments.append(
            Installment(
                number=number,
                due_date=due_date,
                principal_fen=line.principal_fen,
                interest_fen=line.interest_fen,
                fee_fen=line.fee_fen,
                payment_fen=line.payment_fen,
                balance_after_fen=balance_fen,
            )
        )
    return Schedule(
        principal_fen=principal_fen,
        tenor_months=tenor_months,
        method=method,
        rate_bps=rate_bps,
        installment_fee_fen=installment_fee_fen,
        start_date=start_date,
        first_due_date=first_due_date,
        installments=tuple(installments),
    )


def _check_plan_inputs(principal_fen: Fen, tenor_months: int, rate_bps: int) -> None:
    if principal_fen <= 0:
        raise CreditNetValueError("the financed amount must be positive", field="principal_fen")
    if not 1 <= tenor_months <= TENOR_MONTHS_MAX:
        raise CreditNetValueError(
            f"the tenor must be between 1 and {TENOR_MONTHS_MAX} months", field="tenor_months"
        )
    if rate_bps < 0:
        raise CreditNetValueError("the rate cannot be negative", field="rate_bps")


def _monthly_interest(balance_fen: Fen, annual_rate_bps: int) -> Fen:
    """balance × annual bps / 12 / 10,000, half-even."""
    return Fen(div_half_even(balance_fen * annual_rate_bps, MONTHLY_BPS_DENOMINATOR))


def _amortize_annuity(
    principal_fen: Fen, tenor_months: int, annual_rate_bps: int
) -> tuple[AmortizationLine, ...]:
    """Level payments; the last installment takes the remaining principal.

    For very small amounts the rounded payment can run ahead of the exact balance;
    a principal part is then capped at the balance still owed, so no installment is
    ever negative and the balance never goes below zero.
    """
    payment_fen = compute_annuity_payment(principal_fen, tenor_months, annual_rate_bps)
    balance_fen = principal_fen
    lines = []
    for _ in range(tenor_months - 1):
        interest_fen = _monthly_interest(balance_fen, annual_rate_bps)
        principal_part_fen = min(Fen(payment_fen - interest_fen), balance_fen)
        balance_fen = Fen(balance_fen - principal_part_fen)
        lines.append(AmortizationLine(principal_part_fen, interest_fen, FEN_ZERO))
    lines.append(
        AmortizationLine(balance_fen, _monthly_interest(balance_fen, annual_rate_bps), FEN_ZERO)
    )
    return tuple(lines)


def _equal_principal_parts(principal_fen: Fen, tenor_months: int) -> list[Fen]:
    """P // n each, the remainder P mod n added to the FIRST part."""
    base_fen, remainder_fen = divmod(principal_fen, tenor_months)
    parts = [Fen(base_fen)] * tenor_months
    parts[0] = Fen(base_fen + remainder_fen)
    return parts


def _amortize_equal_principal(
    principal_fen: Fen, tenor_months: int, annual_rate_bps: int
) -> tuple[AmortizationLine, ...]:
    balance_fen = principal_fen
    lines = []
    for part_fen in _equal_principal_parts(principal_fen, tenor_months):
        lines.append(
            AmortizationLine(part_fen, _monthly_interest(balance_fen, annual_rate_bps), FEN_ZERO)
        )
        balance_fen = Fen(balance_fen - part_fen)
    return tuple(lines)


def _amortize_flat_fee(
    principal_fen: Fen, tenor_months: int, monthly_fee_bps: int
) -> tuple[AmortizationLine, ...]:
    fee_fen = Fen(div_half_even(principal_fen * monthly_fee_bps, BPS_DENOMINATOR))
    return tuple(
        AmortizationLine(part_fen, FEN_ZERO, fee_fen)
        for part_fen in _equal_principal_parts(principal_fen, tenor_months)
    )


class PayoffKind(StrEnum):
    EARLY_REPAYMENT = "early_repayment"
    CANCELLATION = "cancellation"


@dataclass(frozen=True, slots=True)
class PayoffQuote:
    """What ends a plan on `as_of`: principal not yet billed, accrued interest, fee."""

    kind: PayoffKind
    as_of: date
    principal_fen: Fen
    interest_fen: Fen
    fee_fen: Fen
    accrual_days: int

    @property
    def total_fen(self) -> Fen:
        return Fen(self.principal_fen + self.interest_fen + self.fee_fen)


class CancellationWindowClosedError(ConflictError):
    code = "cancellation_window_closed"


def compute_early_repayment_quote(
    schedule: Schedule, as_of: date, installments_billed: int, early_repayment_fee_bps: int
) -> PayoffQuote:
    """The amount that repays a plan in full on `as_of`.

    Installments already billed are settled through their bills, not here. The quote is
    the principal not yet billed, plus interest accrued on it from the last billed due
    date (or the start date) to `as_of` at the plan's annual rate on ACT/365, half-even,
    capped at the next installment's scheduled interest (a month of 31 days never costs
    more than the schedule promised), plus the early repayment fee: the principal repaid
    × fee bps / 10,000, half-even. Flat-fee plans accrue no interest and their future
    monthly fees are not charged.
    """
    return compute_prepayment_quote(
        schedule, as_of, installments_billed, early_repayment_fee_bps, principal_fen=None
    )


def compute_prepayment_quote(
    schedule: Schedule,
    as_of: date,
    installments_billed: int,
    early_repayment_fee_bps: int,
    principal_fen: Fen | None,
) -> PayoffQuote:
    """The early-repayment terms on `principal_fen` of a plan's principal not yet billed
    (None: all of it), paid on `as_of`: the same interest and fee as
    `compute_early_repayment_quote`, on the part prepaid. Interest accrues on the part
    prepaid only and keeps the same cap (the next installment's scheduled interest); the
    fee is the part prepaid × fee bps / 10,000, half-even.
    """
    position = _plan_position(schedule, as_of, installments_billed)
    if position is None:
        return PayoffQuote(PayoffKind.EARLY_REPAYMENT, as_of, FEN_ZERO, FEN_ZERO, FEN_ZERO, 0)
    outstanding_fen, accrual_start, next_installment = position
    if principal_fen is None:
        principal_fen = outstanding_fen
    if not 0 <= principal_fen <= outstanding_fen:
        raise CreditNetValueError(
            f"at most {outstanding_fen} fen of this plan is not billed yet", field="principal_fen"
        )
    accrual_days = (as_of - accrual_start).days
    interest_fen = FEN_ZERO
    if schedule.method is not PricingMethod.FLAT_MONTHLY_FEE:
        daily_rate = compute_daily_rate(InterestMethod.APR_BPS, schedule.rate_bps, DayCount.ACT_365)
        accrued_fen = compute_interest(principal_fen, daily_rate, accrual_days)
        interest_fen = min(accrued_fen, next_installment.interest_fen)
    if early_repayment_fee_bps < 0:
        raise CreditNetValueError(
            "the early repayment fee cannot be negative", field="early_repayment_fee_bps"
        )
    fee_fen = Fen(div_half_even(principal_fen * early_repayment_fee_bps, BPS_DENOMINATOR))
    return PayoffQuote(
        PayoffKind.EARLY_REPAYMENT, as_of, principal_fen, interest_fen, fee_fen, accrual_days
    )


def compute_cancellation_quote(
    schedule: Schedule, as_of: date, installments_billed: int, cancellation_days: int
) -> PayoffQuote:
    """Cancelling a plan within `cancellation_days` days of its start: principal only.

    Cancellation is allowed while `as_of` is at most `cancellation_days` days after the
    start date and no installment has been billed; it returns the whole financed amount
    with no interest and no fee. Otherwise it raises `CancellationWindowClosedError`.
    """
    _plan_position(schedule, as_of, installments_billed)
    if (as_of - schedule.start_date).days > cancellation_days:
        raise CancellationWindowClosedError(
            f"cancellation is only possible within {cancellation_days} days of the start",
            field="as_of",
        )
    if installments_billed > 0:
        raise CancellationWindowClosedError(
            "an installment has already been billed", field="installments_billed"
        )
    return PayoffQuote(
        PayoffKind.CANCELLATION, as_of, schedule.principal_fen, FEN_ZERO, FEN_ZERO, 0
    )


def _plan_position(
    schedule: Schedule, as_of: date, installments_billed: int
) -> tuple[Fen, date, Installment] | None:
    """(principal not yet billed, accrual start, next installment), or None when all billed."""
    if not 0 <= installments_billed <= schedule.tenor_months:
        raise CreditNetValueError(
            "billed installments must be between 0 and the tenor", field="installments_billed"
        )
    if as_of < schedule.start_date:
        raise CreditNetValueError("the quote date is before the plan start", field="as_of")
    if installments_billed == schedule.tenor_months:
        return None
    next_installment = schedule.installments[installments_billed]
    if as_of >= next_installment.due_date:
        raise CreditNetValueError(
            "an installment due on or before the quote date is not billed yet",
            field="installments_billed",
        )
    if installments_billed == 0:
        return schedule.principal_fen, schedule.start_date, next_installment
    last_billed = schedule.installments[installments_billed - 1]
    if as_of < last_billed.due_date:
        raise CreditNetValueError(
            "the quote date is before the last billed installment", field="as_of"
        )
    return last_billed.balance_after_fen, last_billed.due_date, next_installment
