"""The settlement-event vocabulary the ledger publishes, and the facts settlement reads.

Settlement (and every signer recomputing a cycle) turns the books into partner entries.
It must read the books' facts, never lending's code: a renamed lending enum or a new
field of lending's product model must not silently change what the signers recompute.
So the words written into the books are declared here, once, and lending writes them:

- `BatchKind`, `EodStep` (batch kind `eod_<step>`, see `eod_batch_kind`): the `kind` of
  a `posting_batch`;
- `EventKind`, `CollectionsEventKind` and `CHARGE_OFF_EVENT`: the `kind` of a
  `settlement_event`;
- `LimitLevel`: the `level` of a `limit_node` (product nodes name the versions a line is
  booked on);
- `InterestMethod`, `DayCount`: how a product version states its interest rate.

And the facts settlement reads besides the journal (`node_api.ledger.schema`):
`fetch_line_products` (the product versions a line is booked on) and
`SettlementTermsCache` (a version's funding split and interest rate, read from the
canonical terms JSON stored with the version, the bytes whose hash is anchored on-chain,
so they never change).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Generic, TypeVar

import orjson
from sqlalchemy import and_, select
from sqlalchemy.engine import Connection

from node_api.kernel.errors import NotFoundError
from node_api.kernel.money import Bps
from node_api.ledger.schema import limit_node_table, product_version_table

ProductKey = tuple[str, int]
"""(product code, version)."""


class BatchKind:
    """Posting-batch kinds written by lending's operations."""

    PURCHASE = "purchase"
    CASH_DRAWDOWN = "cash_drawdown"
    PURCHASE_REFUND = "purchase_refund"
    REPAYMENT = "repayment"
    REPAYMENT_REVERSAL = "repayment_reversal"
    RECOVERY = "recovery"
    """Written by collections: money collected after a charge-off or a compensation."""
    GUARANTOR_COMPENSATION = "guarantor_compensation"
    """Written by collections: a guarantor's payment and its subrogated claim."""
    DEBT_SALE = "debt_sale"
    """Written by collections: a charged-off line sold to a collection agency."""
    CREDIT_APPLICATION = "credit_application"
    """Customer credit applied to what is due (a repayment paid from the credit)."""
    CREDIT_REFUND = "credit_refund"
    """Customer credit paid out to the customer."""
    REAGE = "reage"
    """A returned payment's re-ageing: what the bills it had settled owe again."""
    INSTALLMENT_PREPAYMENT = "installment_prepayment"
    """Customer credit (what a payment left) prepaying a plan's unbilled principal, with the
    product's early-repayment interest and fee; reversed as a `repayment_reversal`."""


class EodStep:
    """End-of-day step names; a step's posting batches have kind `eod_<step>`."""

    CLOSE_DAY = "close_day"
    DUE = "due"
    LATE_FEE = "late_fee"
    ACCRUE = "accrue"
    DELINQUENCY = "delinquency"
    CHARGE_OFF = "charge_off"
    BILL = "bill"
    CREDIT = "credit"
    """Customer credit applied (its batches are `credit_application`, not `eod_credit`)."""
    CLASSIFY = "classify"
    """Five-tier classification, non-accrual and loan-loss provisions."""
    FUND = "fund"
    """The funding partners' shares of the day's uses (`lending/eod/step_fund.py`)."""


def eod_batch_kind(step: str) -> str:
    """The posting-batch kind of an end-of-day step."""
    return f"eod_{step}"


EOD_BATCH_KINDS: Final[tuple[str, ...]] = tuple(
    eod_batch_kind(step)
    for step in (
        EodStep.DUE,
        EodStep.LATE_FEE,
        EodStep.ACCRUE,
        EodStep.DELINQUENCY,
        EodStep.CHARGE_OFF,
        EodStep.BILL,
        EodStep.CLASSIFY,
    )
)


class EventKind:
    """Settlement-event kinds written by lending (amounts signed; reversals negate)."""

    MERCHANT_PAYABLE = "merchant_payable"
    CASH_DISBURSED = "cash_disbursed"
    FUNDING_SHARE = "funding_share"
    CHANNEL_COMMISSION = "channel_commission"
    REPAYMENT_RECEIVED = "repayment_received"
    PRINCIPAL_REPAID = "principal_repaid"
    INTEREST_REPAID = "interest_repaid"
    FEE_REPAID = "fee_repaid"
    PENALTY_REPAID = "penalty_repaid"
    CUSTOMER_CREDIT = "customer_credit"


class CollectionsEventKind:
    """Settlement-event kinds written by collections (amounts signed).

    - `recovery`: money collected on a charged-off line, on one product, shared by the
      product's funded shares;
    - `recovery_to_guarantor`: the part of a collection owed to the guarantor that
      compensated the line (`partner_ref`), paid to it before anyone else;
    - `guarantor_compensation`: what the guarantor (`partner_ref`) paid for the line;
    - `debt_sale_proceeds`: the price a collection agency (`partner_ref`) paid for a
      charged-off line, on one product, shared by the product's funded shares.
    """

    RECOVERY = "recovery"
    RECOVERY_TO_GUARANTOR = "recovery_to_guarantor"
    GUARANTOR_COMPENSATION = "guarantor_compensation"
    DEBT_SALE_PROCEEDS = "debt_sale_proceeds"


CHARGE_OFF_EVENT: Final = "charge_off"
"""Settlement-event kind of principal written off by the charge-off step (per product)."""


class LimitLevel(StrEnum):
    """The `level` of a limit node: total -> group -> product -> channel."""

    TOTAL = "total"
    GROUP = "group"
    PRODUCT = "product"
    CHANNEL = "channel"


class InterestMethod(StrEnum):
    """How a product states its interest rate."""

    DAILY_PPM = "daily_ppm"
    """The rate is parts per million per day (`PpmPerDay`)."""
    APR_BPS = "apr_bps"
    """The rate is a nominal annual rate in basis points (`Bps`)."""


class DayCount(StrEnum):
    """The year length an annual rate is divided by to get a daily rate."""

    ACT_365 = "ACT/365"
    ACT_360 = "ACT/360"


DAYS_IN_YEAR: Final[dict[DayCount, int]] = {DayCount.ACT_365: 365, DayCount.ACT_360: 360}


def get_days_in_year(day_count: DayCount) -> int:
    """The year length of a day-count convention (365 or 360)."""
    return DAYS_IN_YEAR[day_count]


@dataclass(frozen=True, slots=True)
class FunderTerms:
    """One funding partner's share of a product version's loans and the rate it is paid."""

    partner_ref: str
    share_ppm: int
    funder_rate_bps: Bps


@dataclass(frozen=True, slots=True)
class SettlementTerms:
    """What settlement needs of one product version."""

    product_code: str
    version: int
    funding_split: tuple[FunderTerms, ...]
    interest_method: InterestMethod
    interest_rate: int
    """ppm per day for daily_ppm, bps per year for apr_bps."""
    day_count: DayCount
    charge_off_buyback: bool = True
    """The lender buys the funders' shares back at charge-off (and keeps recoveries)."""


def parse_settlement_terms(terms_json: str | bytes) -> SettlementTerms:
    """The settlement terms in a version's canonical terms JSON."""
    document = orjson.loads(terms_json)
    interest = document["interest"]
    return SettlementTerms(
        product_code=str(document["product_code"]),
        version=int(document["version"]),
        funding_split=tuple(
            FunderTerms(
                partner_ref=str(share["partner_id"]),
                share_ppm=int(share["share_ppm"]),
                funder_rate_bps=Bps(int(share["funder_rate_bps"])),
            )
            for share in document["funding_split"]
        ),
        interest_method=InterestMethod(interest["method"]),
        interest_rate=int(interest["rate"]),
        day_count=DayCount(interest.get("day_count", DayCount.ACT_365)),
        charge_off_buyback=bool(document.get("charge_off_buyback", True)),
    )


def fetch_terms_json(conn: Connection, product_code: str, version: int) -> str:
    """The canonical terms JSON of one registered version; NotFoundError if never registered."""
    table = product_version_table
    text = conn.execute(
        select(table.c.terms_json).where(
            (table.c.product_code == product_code) & (table.c.version == version)
        )
    ).scalar_one_or_none()
    if text is None:
        raise NotFoundError(
            f"product {product_code} version {version} is not registered", field="product_code"
        )
    return str(text)


def fetch_settlement_terms(conn: Connection, product_code: str, version: int) -> SettlementTerms:
    """The settlement terms of one registered version; NotFoundError if never registered."""
    return parse_settlement_terms(fetch_terms_json(conn, product_code, version))


Terms = TypeVar("Terms")


class TermsCache(Generic[Terms]):
    """Terms of product versions by (code, version), read once by `fetch` and kept for the
    life of the process: versions are immutable."""

    def __init__(self, fetch: Callable[[Connection, str, int], Terms]) -> None:
        self._fetch = fetch
        self._terms: dict[ProductKey, Terms] = {}

    def get(self, conn: Connection, product_code: str, version: int) -> Terms:
        key = (product_code, version)
        terms = self._terms.get(key)
        if terms is None:
            terms = self._fetch(conn, product_code, version)
            self._terms[key] = terms
        return terms


class SettlementTermsCache(TermsCache[SettlementTerms]):
    """Settlement terms by (code, version)."""

    def __init__(self) -> None:
        super().__init__(fetch_settlement_terms)


def fetch_line_products(conn: Connection, line_id: int) -> list[ProductKey]:
    """The product versions a line is booked on (its product limit nodes), sorted."""
    nodes = limit_node_table
    rows = conn.execute(
        select(nodes.c.product_code, nodes.c.product_version)
        .where(
            and_(
                nodes.c.credit_line_id == line_id,
                nodes.c.level == LimitLevel.PRODUCT.value,
            )
        )
        .order_by(nodes.c.product_code, nodes.c.product_version)
    )
    return [(str(code), int(version)) for code, version in rows]
