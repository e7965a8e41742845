"""Bill-mode rules as pure functions: calendar, minimum payment, late fee, delinquency,
penalty-interest days and the repayment waterfall.

Calendar conventions (the bills and end-of-day code rely on them):
- A bill day is a day of month from 1 to 31. In a month too short for it, the bill is
  cut on the month's last day (end-of-month rule: bill day 31 is 28 or 29 February, 30
  April ...), and the next month's bill is on the bill day again.
- The bill cut on bill date D covers postings dated from the previous bill date + 1 day
  through D inclusive (end of day D cuts it after D's postings are in).
- The payment due date is the bill date + the product's due-date offset in days.
- Days past due count from the day after the due date: paying on the due date is on
  time, the next day is 1 day past due. Grace days do not change days past due; they
  only defer the late fee and penalty interest (see `compute_penalty_interest_days`).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Protocol

from node_api.kernel.errors import CreditNetValueError
from node_api.kernel.money import BPS_DENOMINATOR, Bps, Fen, div_ceil, div_floor

BILL_DAY_MIN = 1
BILL_DAY_MAX = 31


# ---------------------------------------------------------------- bill calendar


def _check_bill_day(bill_day: int) -> None:
    if not BILL_DAY_MIN <= bill_day <= BILL_DAY_MAX:
        raise CreditNetValueError(
            f"a bill day is between {BILL_DAY_MIN} and {BILL_DAY_MAX}", field="bill_day"
        )


def compute_bill_date_in_month(year: int, month: int, bill_day: int) -> date:
    """The bill date of a month: the bill day, or the month's last day if it is shorter."""
    _check_bill_day(bill_day)
    return date(year, month, min(bill_day, calendar.monthrange(year, month)[1]))


def is_bill_date(as_of: date, bill_day: int) -> bool:
    """Whether a line with `bill_day` is billed on `as_of` (end-of-month rule)."""
    return compute_bill_date_in_month(as_of.year, as_of.month, bill_day) == as_of


def compute_bill_date_on_or_after(as_of: date, bill_day: int) -> date:
    """The first bill date on or after `as_of`: the bill a posting dated `as_of` lands on."""
    this_month = compute_bill_date_in_month(as_of.year, as_of.month, bill_day)
    if as_of <= this_month:
        return this_month
    if as_of.month == 12:
        return compute_bill_date_in_month(as_of.year + 1, 1, bill_day)
    return compute_bill_date_in_month(as_of.year, as_of.month + 1, bill_day)


def compute_next_bill_date(as_of: date, bill_day: int) -> date:
    """The first bill date strictly after `as_of`."""
    return compute_bill_date_on_or_after(as_of + timedelta(days=1), bill_day)


def compute_previous_bill_date(bill_date: date, bill_day: int | None = None) -> date:
    """The bill date one month before `bill_date` for `bill_day` (default: the same day of
    month, which is the bill day unless the end-of-month rule moved it)."""
    day = bill_date.day if bill_day is None else bill_day
    if bill_date.month == 1:
        return compute_bill_date_in_month(bill_date.year - 1, 12, day)
    return compute_bill_date_in_month(bill_date.year, bill_date.month - 1, day)


def compute_cycle_window(bill_date: date, bill_day: int | None = None) -> tuple[date, date]:
    """(first, last) posting dates, both inclusive, of the bill cut on `bill_date`."""
    return compute_previous_bill_date(bill_date, bill_day) + timedelta(days=1), bill_date


def compute_bill_calendar(as_of: date, bill_day: int, count: int) -> tuple[date, ...]:
    """The next `count` bill dates strictly after `as_of`."""
    if count < 0:
        raise CreditNetValueError("the number of bill dates cannot be negative", field="count")
    dates: list[date] = []
    cursor = as_of
    for _ in range(count):
        cursor = compute_next_bill_date(cursor, bill_day)
        dates.append(cursor)
    return tuple(dates)


def compute_due_date(bill_date: date, due_date_offset_days: int) -> date:
    """The payment due date of a bill: bill date + the product's offset."""
    if due_date_offset_days < 0:
        raise CreditNetValueError(
            "the due-date offset cannot be negative", field="due_date_offset_days"
        )
    return bill_date + timedelta(days=due_date_offset_days)


# ------------------------------------------------------------- minimum payment


def compute_minimum_payment(
    *,
    statement_balance_fen: int,
    new_principal_fen: int,
    fees_fen: int,
    interest_fen: int,
    due_installments_fen: int,
    past_due_fen: int,
    principal_share_bps: Bps,
    floor_fen: int,
) -> Fen:
    """The minimum payment of a bill.

    = ceil(new principal × share bps / 10,000) + all fees + all interest (contractual
    and penalty) + installments falling due + amounts already past due; at least
    `floor_fen`; never more than the statement balance. The share rounds up so the
    minimum is never below the stated percentage.
    """
    parts = {
        "statement_balance_fen": statement_balance_fen,
        "new_principal_fen": new_principal_fen,
        "fees_fen": fees_fen,
        "interest_fen": interest_fen,
        "due_installments_fen": due_installments_fen,
        "past_due_fen": past_due_fen,
        "floor_fen": floor_fen,
    }
    for name, value in parts.items():
        if value < 0:
            raise CreditNetValueError("an amount on a bill cannot be negative", field=name)
    if not 0 <= principal_share_bps <= BPS_DENOMINATOR:
        raise CreditNetValueError(
            "the principal share is between 0 and 10,000 bps", field="principal_share_bps"
        )
    share_fen = div_ceil(new_principal_fen * principal_share_bps, BPS_DENOMINATOR)
    minimum_fen = share_fen + fees_fen + interest_fen + due_installments_fen + past_due_fen
    return Fen(min(max(minimum_fen, floor_fen), statement_balance_fen))


# --------------------------------------------------- late fee, penalty, grace


def compute_late_fee_date(due_date: date, grace_days: int) -> date:
    """The business date on which a still-unpaid bill is charged its late fee."""
    if grace_days < 0:
        raise CreditNetValueError("grace days cannot be negative", field="grace_days")
    return due_date + timedelta(days=grace_days + 1)


def compute_late_fee(
    *,
    unpaid_minimum_fen: int,
    late_fee_fixed_fen: int,
    late_fee_cap_bps: Bps,
    late_fee_cap_per_bill_fen: int,
    late_fees_charged_on_bill_fen: int,
) -> Fen:
    """The late fee for one missed due date.

    The fixed fee, capped three ways: by the product's proportional cap (unpaid minimum
    × cap bps / 10,000, rounded DOWN in the customer's favour; a cap of 0 bps means no
    proportional cap), by what is left of the per-bill cap after the late fees this bill
    already carries, and at zero when nothing is unpaid.
    """
    for name, value in (
        ("unpaid_minimum_fen", unpaid_minimum_fen),
        ("late_fee_fixed_fen", late_fee_fixed_fen),
        ("late_fee_cap_bps", late_fee_cap_bps),
        ("late_fee_cap_per_bill_fen", late_fee_cap_per_bill_fen),
        ("late_fees_charged_on_bill_fen", late_fees_charged_on_bill_fen),
    ):
        if value < 0:
            raise CreditNetValueError("a late-fee input cannot be negative", field=name)
    if unpaid_minimum_fen == 0:
        return Fen(0)
    fee_fen = late_fee_fixed_fen
    if late_fee_cap_bps > 0:
        fee_fen = min(fee_fen, div_floor(unpaid_minimum_fen * late_fee_cap_bps, BPS_DENOMINATOR))
    room_fen = max(late_fee_cap_per_bill_fen - late_fees_charged_on_bill_fen, 0)
    return Fen(min(fee_fen, room_fen))


def compute_days_past_due(due_date: date, as_of: date) -> int:
    """Days past due on `as_of`: 0 up to and including the due date."""
    return max((as_of - due_date).days, 0)


def compute_penalty_interest_days(due_date: date, as_of: date, grace_days: int) -> int:
    """Days of penalty interest to post on business date `as_of` for an unpaid amount.

    Nothing while the amount is within grace. On the first day past grace the whole
    overdue run is posted at once (grace + 1 days: grace forgives only payment within
    it); afterwards one day per business day. Summed over consecutive days this equals
    the days past due once grace is exceeded.
    """
    if grace_days < 0:
        raise CreditNetValueError("grace days cannot be negative", field="grace_days")
    days_past_due = compute_days_past_due(due_date, as_of)
    if days_past_due <= grace_days:
        return 0
    if days_past_due == grace_days + 1:
        return days_past_due
    return 1


# ------------------------------------------------------------------ delinquency


class DelinquencyBucket(StrEnum):
    """Delinquency buckets by days past due (with the default thresholds)."""

    M0 = "M0"
    """Current."""
    M1 = "M1"
    """1–30 days past due."""
    M2 = "M2"
    """31–60."""
    M3 = "M3"
    """61–90."""
    M4 = "M4"
    """91–120."""
    M5 = "M5"
    """121–150."""
    M6 = "M6"
    """151–180."""
    M7_PLUS = "M7+"
    """Beyond 180."""


BUCKET_ORDER: tuple[DelinquencyBucket, ...] = tuple(DelinquencyBucket)


@dataclass(frozen=True, slots=True)
class BucketThreshold:
    """An account with at least `days_past_due_min` days past due is in `bucket`."""

    days_past_due_min: int
    bucket: DelinquencyBucket


class BucketThresholdLike(Protocol):
    """Anything carrying a threshold, such as the product's own threshold model."""

    @property
    def days_past_due_min(self) -> int: ...

    @property
    def bucket(self) -> DelinquencyBucket: ...


DEFAULT_DELINQUENCY_THRESHOLDS: tuple[BucketThreshold, ...] = tuple(
    BucketThreshold(1 + 30 * index, bucket) for index, bucket in enumerate(BUCKET_ORDER[1:])
)
DEFAULT_CHARGE_OFF_DAYS = 180


def compute_delinquency_bucket(
    days_past_due: int,
    thresholds: Iterable[BucketThresholdLike] = DEFAULT_DELINQUENCY_THRESHOLDS,
) -> DelinquencyBucket:
    """The bucket of an account: the last threshold it reaches, or M0 below all of them."""
    if days_past_due < 0:
        raise CreditNetValueError("days past due cannot be negative", field="days_past_due")
    bucket = DelinquencyBucket.M0
    for threshold in thresholds:
        if days_past_due >= threshold.days_past_due_min:
            bucket = threshold.bucket
    return bucket


DEFAULT_NON_ACCRUAL_DAYS = 90


def is_charge_off_due(days_past_due: int, charge_off_days: int = DEFAULT_CHARGE_OFF_DAYS) -> bool:
    """True once the account is more than the product's charge-off days past due ("180+
    days": with the defaults, day 181, the first day of bucket M7+)."""
    return days_past_due > charge_off_days


def is_non_accrual(days_past_due: int, non_accrual_days: int = DEFAULT_NON_ACCRUAL_DAYS) -> bool:
    """True from the day the account reaches the product's non-accrual days past due."""
    return days_past_due >= non_accrual_days


class LoanClass(StrEnum):
    """The five-tier loan classification (五级分类), best first."""

    NORMAL = "normal"
    """正常."""
    SPECIAL_MENTION = "special_mention"
    """关注."""
    SUBSTANDARD = "substandard"
    """次级."""
    DOUBTFUL = "doubtful"
    """可疑."""
    LOSS = "loss"
    """损失."""


class ClassThresholdsLike(Protocol):
    """The product's classification thresholds (days past due from which each class)."""

    @property
    def special_mention_days(self) -> int: ...

    @property
    def substandard_days(self) -> int: ...

    @property
    def doubtful_days(self) -> int: ...

    @property
    def loss_days(self) -> int: ...


def compute_loan_class(
    days_past_due: int, thresholds: ClassThresholdsLike, charged_off: bool = False
) -> LoanClass:
    """The class of an account: the worst class whose threshold its days past due reach;
    a charged-off account is a loss whatever its days."""
    if days_past_due < 0:
        raise CreditNetValueError("days past due cannot be negative", field="days_past_due")
    if charged_off:
        return LoanClass.LOSS
    found = LoanClass.NORMAL
    for loan_class, days_min in (
        (LoanClass.SPECIAL_MENTION, thresholds.special_mention_days),
        (LoanClass.SUBSTANDARD, thresholds.substandard_days),
        (LoanClass.DOUBTFUL, thresholds.doubtful_days),
        (LoanClass.LOSS, thresholds.loss_days),
    ):
        if days_past_due >= days_min:
            found = loan_class
    return found


# ----------------------------------------------------------------- waterfall


class Component(StrEnum):
    """What a receivable is, for the repayment waterfall."""

    PENALTY = "penalty"
    FEES = "fees"
    INTEREST = "interest"
    PRINCIPAL = "principal"


DEFAULT_ALLOCATION_ORDER: tuple[Component, ...] = (
    Component.PENALTY,
    Component.FEES,
    Component.INTEREST,
    Component.PRINCIPAL,
)


@dataclass(frozen=True, slots=True)
class OutstandingItem:
    """One receivable a payment may settle. `item_id` breaks ties deterministically."""

    item_id: str
    component: Component
    amount_fen: int
    past_due: bool
    due_date: date


@dataclass(frozen=True, slots=True)
class Allocation:
    """The part of a payment that settles (part of) one outstanding item."""

    item_id: str
    component: Component
    past_due: bool
    due_date: date
    amount_fen: Fen


@dataclass(frozen=True, slots=True)
class WaterfallResult:
    """Allocations in waterfall order; allocated + credit balance = the payment."""

    payment_fen: Fen
    allocations: tuple[Allocation, ...]
    credit_balance_fen: Fen

    @property
    def allocated_fen(self) -> Fen:
        return Fen(sum(allocation.amount_fen for allocation in self.allocations))


def check_allocation_order(order: Sequence[Component]) -> None:
    """An allocation order must list each component exactly once."""
    if sorted(order) != sorted(Component) or len(order) != len(Component):
        raise CreditNetValueError(
            "the allocation order must list penalty, fees, interest and principal once each",
            field="allocation.order",
        )


def compute_waterfall(
    payment_fen: int,
    items: Iterable[OutstandingItem],
    order: Sequence[Component] = DEFAULT_ALLOCATION_ORDER,
    past_due_first: bool = True,
) -> WaterfallResult:
    """Allocate a payment to outstanding items; the excess becomes credit balance.

    Items are settled in this order: past-due before current (when `past_due_first`),
    then by component in the product's `order`, then oldest due date first, then by
    `item_id`. Each item is settled in full before the next gets anything. Without
    `past_due_first` the component order comes first and due date decides within it.
    """
    if payment_fen < 0:
        raise CreditNetValueError("a payment cannot be negative", field="payment_fen")
    check_allocation_order(order)
    rank = {component: index for index, component in enumerate(order)}
    item_list = list(items)
    for item in item_list:
        if item.amount_fen < 0:
            raise CreditNetValueError("an outstanding amount cannot be negative", field="items")

    def sort_key(item: OutstandingItem) -> tuple[int, int, date, str]:
        status = 0 if (item.past_due or not past_due_first) else 1
        return status, rank[item.component], item.due_date, item.item_id

    remaining_fen = payment_fen
    allocations = []
    for item in sorted(item_list, key=sort_key):
        if remaining_fen == 0:
            break
        amount_fen = Fen(min(item.amount_fen, remaining_fen))
        if amount_fen == 0:
            continue
        remaining_fen -= amount_fen
        allocations.append(
            Allocation(item.item_id, item.component, item.past_due, item.due_date, amount_fen)
        )
    return WaterfallResult(Fen(payment_fen), tuple(allocations), Fen(remaining_fen))
