"""What-if pricing: what a purchase or a payoff would cost, without booking anything.

Installment dates in bill mode: installment k is billed on the k-th bill date strictly
after the start date (the schedule's `due_date`), and is payable by that bill's payment
due date (bill date + the product's offset, `bill_due_dates`). Bill days are 1..28, so
the monthly dates never need clamping.

A quote's annual cost is computed on those payment due dates (a short or long first
period costs what its days cost), rounded up to the bps, both nominal and effective; it
says which of the two the node compares with its cap, and whether the plan is within it
(see `cost_cap`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from node_api.kernel.errors import CreditNetValueError
from node_api.kernel.money import Fen
from node_api.lending.billing_rules import compute_due_date, compute_next_bill_date
from node_api.lending.products.canonical import terms_hash
from node_api.lending.products.cost_cap import (
    Annualization,
    CostCap,
    compute_annual_bps,
    compute_plan_flows,
    compute_timed_flows,
)
from node_api.lending.products.model import ProductTerms
from node_api.lending.products.pricing import AllInCost, compute_all_in_apr, compute_upfront_fee
from node_api.lending.schedules import (
    PayoffQuote,
    Schedule,
    compute_cancellation_quote,
    compute_early_repayment_quote,
    compute_schedule,
)


@dataclass(frozen=True, slots=True)
class Quote:
    """A priced sample purchase: schedule, totals and all-in cost, bound to the terms hash."""

    product_code: str
    product_version: int
    terms_hash: bytes
    amount_fen: Fen
    tenor_months: int
    bill_day: int
    schedule: Schedule
    bill_due_dates: tuple[date, ...]
    upfront_fee_fen: Fen
    total_interest_fen: Fen
    total_fees_fen: Fen
    """Upfront fee plus every installment's fees."""
    total_repayment_fen: Fen
    """Sum of all installment payments (principal, interest, fees)."""
    all_in: AllInCost
    """The all-in cost with every period a whole month (what publishing checks)."""
    annualization: Annualization
    """Which annual figure the node compares with its cap."""
    nominal_annual_bps: int
    """12 × the monthly IRR on the payment due dates, in bps rounded up."""
    effective_annual_bps: int
    """(1 + the monthly IRR)^12 − 1 on the payment due dates, in bps rounded up."""
    cost_cap_bps: int

    @property
    def annual_cost_bps(self) -> int:
        """The figure in the node's annualization."""
        if self.annualization is Annualization.NOMINAL:
            return self.nominal_annual_bps
        return self.effective_annual_bps

    @property
    def within_cost_cap(self) -> bool:
        return self.annual_cost_bps <= self.cost_cap_bps


def price_purchase(
    terms: ProductTerms,
    amount_fen: int,
    tenor_months: int,
    start_date: date,
    bill_day: int | None = None,
    cost_cap: CostCap = CostCap(),
) -> Quote:
    """Price `amount_fen` financed over `tenor_months` from `start_date` under `terms`.

    `bill_day` defaults to the product's first bill-day option. The amount must be
    positive and within the product's maximum limit; the tenor must be allowed. The cost
    is stated against `cost_cap` (the node's cap and annualization).
    """
    chosen_bill_day = terms.bill_day_options[0] if bill_day is None else bill_day
    _check_purchase(terms, amount_fen, tenor_months, chosen_bill_day)
    principal_fen = Fen(amount_fen)
    first_bill_date = compute_next_bill_date(start_date, chosen_bill_day)
    installment = terms.installment
    schedule = compute_schedule(
        principal_fen,
        tenor_months,
        installment.pricing_method,
        installment.rate_bps,
        start_date,
        first_bill_date,
        terms.fees.installment_fee_fen,
        chosen_bill_day,
    )
    upfront_fee_fen = compute_upfront_fee(terms.fees, principal_fen)
    due_dates = tuple(
        compute_due_date(item.due_date, terms.due_date_offset_days)
        for item in schedule.installments
    )
    flows = compute_timed_flows(
        start_date,
        compute_plan_flows(
            start_date,
            principal_fen,
            upfront_fee_fen,
            [
                (on, item.payment_fen)
                for on, item in zip(due_dates, schedule.installments, strict=True)
            ],
        ),
    )
    return Quote(
        product_code=terms.product_code,
        product_version=terms.version,
        terms_hash=terms_hash(terms),
        amount_fen=principal_fen,
        tenor_months=tenor_months,
        bill_day=chosen_bill_day,
        schedule=schedule,
        bill_due_dates=due_dates,
        upfront_fee_fen=upfront_fee_fen,
        total_interest_fen=schedule.total_interest_fen,
        total_fees_fen=Fen(upfront_fee_fen + schedule.total_fee_fen),
        total_repayment_fen=schedule.total_payment_fen,
        all_in=compute_all_in_apr(terms, principal_fen, tenor_months),
        annualization=cost_cap.annualization,
        nominal_annual_bps=compute_annual_bps(flows, Annualization.NOMINAL),
        effective_annual_bps=compute_annual_bps(flows, Annualization.EFFECTIVE),
        cost_cap_bps=cost_cap.cap_bps,
    )


def price_payoff(
    terms: ProductTerms, schedule: Schedule, as_of: date, installments_billed: int
) -> PayoffQuote:
    """What ends `schedule` on `as_of` under the product's rules.

    Within the product's cancellation window (and before any installment is billed) the
    plan is cancelled: principal only, no interest, no fee. Otherwise it is an early full
    repayment with accrued interest and the product's early repayment fee.
    """
    cancellation_days = terms.installment.cancellation_days
    within_window = (as_of - schedule.start_date).days <= cancellation_days
    if cancellation_days > 0 and within_window and installments_billed == 0:
        return compute_cancellation_quote(schedule, as_of, installments_billed, cancellation_days)
    return compute_early_repayment_quote(
        schedule, as_of, installments_billed, terms.fees.early_repayment_fee_bps
    )


def _check_purchase(terms: ProductTerms, amount_fen: int, tenor_months: int, bill_day: int) -> None:
    if not 0 < amount_fen <= terms.limit_fen_max:
        raise CreditNetValueError(
            "the amount must be positive and within the product's maximum limit",
            field="amount_fen",
        )
    if tenor_months not in terms.installment.tenors_months:
        raise CreditNetValueError("the product does not offer this tenor", field="tenor_months")
    if bill_day not in terms.bill_day_options:
        raise CreditNetValueError("the product does not offer this bill day", field="bill_day")
