"""Product terms: versioned, immutable, validated on construction.

A product is identified by (`product_code`, `version`). A new version is a new
`ProductTerms` value; loans keep the version (and its `terms_hash`) they were booked
on, so changing a product never changes loans already booked.

Units are in the field names: `_fen` amounts, `_bps` basis points (1/10,000), `_ppm`
parts per million, `_days`, `_months`. The two fields whose unit depends on a method
say so: `InterestTerms.rate` and `InstallmentTerms.rate_bps`.

Set-like lists (bill days, tenors, channels, funding partners) are normalised to
ascending order on construction, so two inputs listing the same set are the same
terms and hash the same. `allocation.order` is a real order and is kept as given.

Build terms from untrusted data with `parse_product_terms` (in `validation`), which
turns pydantic's errors into `InvalidProductError` naming the field.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)

from node_api.kernel.errors import CreditNetValueError
from node_api.kernel.money import PPM_DENOMINATOR, Bps, Fen, PpmPerDay
from node_api.ledger.settlement_events import DayCount, InterestMethod
from node_api.lending.billing_rules import (
    DEFAULT_ALLOCATION_ORDER,
    DEFAULT_CHARGE_OFF_DAYS,
    DEFAULT_DELINQUENCY_THRESHOLDS,
    DEFAULT_NON_ACCRUAL_DAYS,
    Component,
    DelinquencyBucket,
    LoanClass,
    check_allocation_order,
)
from node_api.lending.schedules import PricingMethod

ALLOWED_TENORS_MONTHS = frozenset({3, 6, 9, 12, 18, 24, 36})
AMOUNT_FEN_MAX = 10**12
"""10 billion yuan: far above any limit, and well inside JSON's exact-integer range."""
IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
PRODUCT_CODE_PATTERN = r"^[A-Z0-9][A-Z0-9_-]{0,31}$"


StrictFen = Annotated[Fen, Strict()]
"""An amount in fen, validated strictly (JSON integers only)."""
StrictBps = Annotated[Bps, Strict()]
StrictPpmPerDay = Annotated[PpmPerDay, Strict()]


class InvalidProductError(CreditNetValueError):
    """Product terms that break a rule; `field` is the dotted path of the offending field."""

    code = "invalid_product"


class ProductType(StrEnum):
    REVOLVING_PURCHASE = "revolving_purchase"
    INSTALLMENT = "installment"
    CASH_LOAN = "cash_loan"


class _Frozen(BaseModel):
    """Frozen, no unknown fields; integers and booleans strict (no "3", no True as 1,
    no 3.0), so what is hashed is exactly what was sent."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


_Item = TypeVar("_Item", int, str)


def _sorted_unique(values: tuple[_Item, ...], field: str) -> tuple[_Item, ...]:
    """A set-like list in canonical (ascending) order; duplicates are an error."""
    if len(set(values)) != len(values):
        raise InvalidProductError("the list has duplicates", field=field)
    return tuple(sorted(values))


class InterestTerms(_Frozen):
    """Interest on revolving (non-installment) balances, accrued daily."""

    method: InterestMethod
    rate: StrictInt = Field(ge=0, le=1_000_000)
    """ppm per day when `method` is daily_ppm; bps per year when it is apr_bps."""
    day_count: DayCount = DayCount.ACT_365


class MinimumPaymentRule(_Frozen):
    """Minimum = share of new principal + all fees, interest and due installments; ≥ floor."""

    principal_share_bps: StrictBps = Field(ge=0, le=10_000)
    floor_fen: StrictFen = Field(ge=0, le=AMOUNT_FEN_MAX)


class InstallmentTerms(_Frozen):
    """Which tenors a plan may have and how it is priced."""

    tenors_months: tuple[StrictInt, ...] = ()
    pricing_method: PricingMethod = PricingMethod.ANNUITY
    rate_bps: StrictBps = Field(default=Bps(0), ge=0, le=100_000)
    """Annual bps for annuity and equal principal; monthly fee bps of the original
    principal for flat_monthly_fee."""
    cancellation_days: StrictInt = Field(default=0, ge=0, le=60)
    """A plan may be cancelled without interest or fees within this many days."""
    min_principal_fen: StrictFen = Field(default=Fen(0), ge=0, le=AMOUNT_FEN_MAX)
    """The least principal a plan may convert (never below 1 fen per installment)."""

    @field_validator("tenors_months")
    @classmethod
    def _tenors_allowed(cls, tenors: tuple[int, ...]) -> tuple[int, ...]:
        for tenor in tenors:
            if tenor not in ALLOWED_TENORS_MONTHS:
                raise InvalidProductError(
                    f"tenors must be among {sorted(ALLOWED_TENORS_MONTHS)}", field="tenors_months"
                )
        return _sorted_unique(tenors, "tenors_months")


class FeeTerms(_Frozen):
    """Fees. The origination fee is either a share of principal or fixed, not both."""

    origination_fee_bps: StrictBps = Field(default=Bps(0), ge=0, le=10_000)
    origination_fee_fixed_fen: StrictFen = Field(default=Fen(0), ge=0, le=AMOUNT_FEN_MAX)
    installment_fee_fen: StrictFen = Field(default=Fen(0), ge=0, le=AMOUNT_FEN_MAX)
    """A fixed fee added to every installment."""
    late_fee_fixed_fen: StrictFen = Field(default=Fen(0), ge=0, le=AMOUNT_FEN_MAX)
    late_fee_cap_bps: StrictBps = Field(default=Bps(0), ge=0, le=10_000)
    """Cap on one late fee as a share of the unpaid minimum payment; 0 = no such cap."""
    late_fee_cap_per_bill_fen: StrictFen = Field(default=Fen(0), ge=0, le=AMOUNT_FEN_MAX)
    early_repayment_fee_bps: StrictBps = Field(default=Bps(0), ge=0, le=10_000)

    @model_validator(mode="after")
    def _consistent(self) -> FeeTerms:
        if self.origination_fee_bps and self.origination_fee_fixed_fen:
            raise InvalidProductError(
                "the origination fee is either bps or fixed, not both",
                field="origination_fee_fixed_fen",
            )
        if self.late_fee_cap_per_bill_fen < self.late_fee_fixed_fen:
            raise InvalidProductError(
                "the per-bill late-fee cap is below the fixed late fee",
                field="late_fee_cap_per_bill_fen",
            )
        return self


class AllocationOrder(_Frozen):
    """The repayment waterfall: component order, and whether past-due items go first."""

    order: tuple[Component, ...] = DEFAULT_ALLOCATION_ORDER
    past_due_first: StrictBool = True

    @field_validator("order")
    @classmethod
    def _permutation(cls, order: tuple[Component, ...]) -> tuple[Component, ...]:
        try:
            check_allocation_order(order)
        except CreditNetValueError as error:
            raise InvalidProductError(error.detail, field="order") from error
        return order


class CreditApplicationTerms(AllocationOrder):
    """How the customer's credit (over-payments, refunds beyond the debt) is applied to
    what is due, at posting time and at end of day: past due before billed (oldest due
    first) unless `past_due_first` is false, then by component in `order` (the same
    fields and checks as the repayment waterfall, a term of its own)."""


class DelinquencyThreshold(_Frozen):
    days_past_due_min: StrictInt = Field(ge=1, le=3_650)
    bucket: DelinquencyBucket


class ClassificationThresholds(_Frozen):
    """The five-tier loan classification (五级分类) by days past due: a line at least
    this many days past due is at least in that class; below the first it is normal.
    The defaults follow the 2023 rules on the risk classification of financial assets
    (overdue: special mention; over 90 days: substandard; over 270: doubtful; over 360:
    loss). A charged-off line is in the loss class whatever its days."""

    special_mention_days: StrictInt = Field(default=1, ge=1, le=3_650)
    substandard_days: StrictInt = Field(default=91, ge=1, le=3_650)
    doubtful_days: StrictInt = Field(default=271, ge=1, le=3_650)
    loss_days: StrictInt = Field(default=361, ge=1, le=3_650)

    @model_validator(mode="after")
    def _ascending(self) -> ClassificationThresholds:
        days = [self.special_mention_days, self.substandard_days, self.doubtful_days,
                self.loss_days]  # fmt: skip
        if days != sorted(set(days)):
            raise InvalidProductError(
                "classification thresholds must be strictly ascending", field="classification"
            )
        return self


class ProvisionMatrix(_Frozen):
    """Loan-loss provision per class, in bps of the line's receivables (an expected-loss
    matrix; the defaults are the general 1% and the specific 2%, 25%, 50% and 100% of the
    loan-loss provisioning guideline)."""

    normal_bps: StrictBps = Field(default=Bps(100), ge=0, le=10_000)
    special_mention_bps: StrictBps = Field(default=Bps(200), ge=0, le=10_000)
    substandard_bps: StrictBps = Field(default=Bps(2_500), ge=0, le=10_000)
    doubtful_bps: StrictBps = Field(default=Bps(5_000), ge=0, le=10_000)
    loss_bps: StrictBps = Field(default=Bps(10_000), ge=0, le=10_000)

    @model_validator(mode="after")
    def _ascending(self) -> ProvisionMatrix:
        rates = [self.normal_bps, self.special_mention_bps, self.substandard_bps,
                 self.doubtful_bps, self.loss_bps]  # fmt: skip
        if rates != sorted(rates):
            raise InvalidProductError(
                "provision rates cannot fall as the class worsens", field="provision_bps"
            )
        return self

    def rate_bps(self, loan_class: LoanClass) -> Bps:
        return Bps(getattr(self, f"{loan_class.value}_bps"))


class DelinquencyTerms(_Frozen):
    """Buckets by days past due, ascending, and the charge-off day: a line is charged off
    on the first day it is MORE than `charge_off_days` past due (with the defaults, day
    181, in bucket M7+). From `non_accrual_days` past due the line is non-accrual: its
    interest and penalty are suspended off balance sheet and recognized when collected."""

    thresholds: tuple[DelinquencyThreshold, ...] = tuple(
        DelinquencyThreshold(days_past_due_min=item.days_past_due_min, bucket=item.bucket)
        for item in DEFAULT_DELINQUENCY_THRESHOLDS
    )
    charge_off_days: StrictInt = Field(default=DEFAULT_CHARGE_OFF_DAYS, ge=1, le=3_650)
    non_accrual_days: StrictInt = Field(default=DEFAULT_NON_ACCRUAL_DAYS, ge=1, le=3_650)
    classification: ClassificationThresholds = ClassificationThresholds()
    provision_bps: ProvisionMatrix = ProvisionMatrix()

    @field_validator("thresholds")
    @classmethod
    def _ascending(
        cls, thresholds: tuple[DelinquencyThreshold, ...]
    ) -> tuple[DelinquencyThreshold, ...]:
        days = [item.days_past_due_min for item in thresholds]
        buckets = [list(DelinquencyBucket).index(item.bucket) for item in thresholds]
        if not thresholds or days != sorted(set(days)) or buckets != sorted(set(buckets)):
            raise InvalidProductError(
                "thresholds must be non-empty with days and buckets strictly ascending",
                field="thresholds",
            )
        if DelinquencyBucket.M0 in (item.bucket for item in thresholds):
            raise InvalidProductError("M0 is the bucket below every threshold", field="thresholds")
        return thresholds


class FundingShare(_Frozen):
    """One funding partner's share of every loan and the rate it is paid."""

    partner_id: str = Field(pattern=IDENTIFIER_PATTERN)
    share_ppm: StrictInt = Field(ge=1, le=PPM_DENOMINATOR)
    funder_rate_bps: StrictBps = Field(ge=0, le=100_000)


class ProductTerms(_Frozen):
    """One immutable version of a product. See the module docstring for units."""

    product_code: str = Field(pattern=PRODUCT_CODE_PATTERN)
    version: StrictInt = Field(ge=1, le=1_000_000)
    product_type: ProductType
    currency: Literal["CNY"] = "CNY"
    limit_fen_min: StrictFen = Field(ge=1, le=AMOUNT_FEN_MAX)
    limit_fen_max: StrictFen = Field(ge=1, le=AMOUNT_FEN_MAX)
    interest: InterestTerms
    free_interest_days: StrictInt = Field(ge=0, le=90)
    bill_day_options: tuple[StrictInt, ...] = Field(min_length=1)
    due_date_offset_days: StrictInt = Field(ge=0, le=60)
    minimum_payment: MinimumPaymentRule
    installment: InstallmentTerms = InstallmentTerms()
    fees: FeeTerms = FeeTerms()
    penalty_rate_ppm_per_day: StrictPpmPerDay = Field(ge=0, le=100_000)
    grace_days: StrictInt = Field(ge=0, le=30)
    grace_payments_on_time: StrictBool = False
    """A bill paid in full within the grace days keeps its interest-free period (its due
    date is decided at the end of the grace days instead of the due date)."""
    interest_on_unpaid_only: StrictBool = False
    """未还部分计息: a bill not paid in full is charged interest-free-period interest only
    on the share of it left unpaid, not on every purchase in full."""
    allocation: AllocationOrder = AllocationOrder()
    credit_application: CreditApplicationTerms = CreditApplicationTerms()
    delinquency: DelinquencyTerms = DelinquencyTerms()
    funding_split: tuple[FundingShare, ...] = Field(min_length=1)
    charge_off_buyback: StrictBool = True
    """True: at charge-off the lender buys the funders' shares back (CHARGE_OFF entries),
    so the loss and whatever is recovered later are the lender's. False: each funder bears
    its share of the loss and receives its share of every recovery and debt-sale price."""
    channel_commission_bps: StrictBps = Field(ge=0, le=10_000)
    eligible_channels: tuple[str, ...] = Field(min_length=1)

    @field_validator("bill_day_options")
    @classmethod
    def _bill_days(cls, days: tuple[int, ...]) -> tuple[int, ...]:
        if any(not 1 <= day <= 31 for day in days):
            raise InvalidProductError("bill days are between 1 and 31", field="bill_day_options")
        return _sorted_unique(days, "bill_day_options")

    @field_validator("eligible_channels")
    @classmethod
    def _channels(cls, channels: tuple[str, ...]) -> tuple[str, ...]:
        for channel in channels:
            _check_identifier(channel, "eligible_channels")
        return _sorted_unique(channels, "eligible_channels")

    @field_validator("funding_split")
    @classmethod
    def _funding(cls, shares: tuple[FundingShare, ...]) -> tuple[FundingShare, ...]:
        partner_ids = [share.partner_id for share in shares]
        if len(set(partner_ids)) != len(partner_ids):
            raise InvalidProductError("a funding partner is listed twice", field="funding_split")
        total_ppm = sum(share.share_ppm for share in shares)
        if total_ppm != PPM_DENOMINATOR:
            raise InvalidProductError(
                f"funding shares sum to {total_ppm} ppm, not {PPM_DENOMINATOR}",
                field="funding_split",
            )
        return tuple(sorted(shares, key=lambda share: share.partner_id))

    @model_validator(mode="after")
    def _consistent(self) -> ProductTerms:
        if self.limit_fen_min > self.limit_fen_max:
            raise InvalidProductError(
                "the minimum limit is above the maximum limit", field="limit_fen_min"
            )
        if self.product_type is not ProductType.REVOLVING_PURCHASE and not (
            self.installment.tenors_months
        ):
            raise InvalidProductError(
                "installment and cash-loan products need at least one tenor",
                field="installment.tenors_months",
            )
        first_threshold_days = self.delinquency.thresholds[0].days_past_due_min
        if self.delinquency.charge_off_days < first_threshold_days:
            raise InvalidProductError(
                "charge-off comes before the first delinquency bucket",
                field="delinquency.charge_off_days",
            )
        return self


def _check_identifier(value: str, field: str) -> None:
    if re.fullmatch(IDENTIFIER_PATTERN, value) is None:
        raise InvalidProductError(
            "identifiers use letters, digits and _ . : - (at most 64)", field=field
        )
