"""Ledger settlement events -> settlement entries: which party owes which party what.

The ledger writes a `settlement_event` row, in the same transaction as the postings, for
every movement that concerns someone other than the borrower. This module turns the
rows of one cycle into settlement entries, in event-id order, numbered from 1; each
entry's `source_ref` is the id of the event it came from. It is pure: the caller loads
the rows and an `AllocationBook` (partners, product terms, guarantees, line weights)
through `settlement.ledger_source`, and the node's `LeafSalts`, so a signer can recompute a
cycle from the books and get byte-identical entries (salts included).

What each ledger event becomes (the lender is the hub; every event nets to zero):

- `funding_share` (a funder's share of a line's open principal changed by `amount`):
  the funder pays the lender `amount` when it grows, the lender pays it back when it
  shrinks. The entry kind follows the posting batch: purchase or drawdown ->
  PRINCIPAL_FUNDED, repayment (and its reversal) -> PRINCIPAL_REPAID, refund -> REFUND,
  charge-off -> CHARGE_OFF (the lender buys the funders' share back). The ledger has
  already split the principal by share (cumulatively, rounding down per funder), so the
  amounts are taken as they are. The lender's own share moves nothing.
- `channel_commission`: the lender pays the channel (a refund's negative commission is
  the channel paying back).
- `interest_repaid`: `settlement.allocation` INTEREST_COLLECTED per product terms: each
  funder receives the interest collected on its share (floor) and keeps what it earned
  at its own rate; the rest goes back to the lender as service fee. The principal-days
  the interest accrued on are implied by the product's own rate (`principal_days`), so
  a funder at 6 % on a 18 % product keeps one third of the interest on its share.
- `fee_repaid`, `penalty_repaid`: FEE_COLLECTED, each funder receives its share (floor).
- `charge_off` (principal written off) of a product with a guarantee: the guarantor pays
  `floor(principal * share)` (GUARANTEE_PAYMENT) to whoever bears the loss: the lender
  when the product's `charge_off_buyback` made it buy the funders back through the
  charge-off's `funding_share` events (CHARGE_OFF); otherwise the funders and the lender
  by funding share (and the charge-off's `funding_share` events move nothing).
- `guarantor_compensation` (collections, `partner_ref` the guarantor): the guarantor pays
  the lender `amount` (GUARANTEE_PAYMENT). What the compensation paid off reaches the
  funders through the repayment it was posted as (principal, interest and fee shares).
- `recovery_to_guarantor`: the lender pays the guarantor back `amount` out of a
  collection on a line it compensated (RECOVERY).
- `recovery` (money collected on a charged-off line, per product): RECOVERY, split over
  the product's funding split, the lender's own share included, by largest remainder,
  when the funders bore the loss; after a buy-back the lender keeps it (no entry).
- `debt_sale_proceeds` (per product, `partner_ref` the buying agency): the agency pays the
  lender `amount`, and the lender passes it on by funded share exactly as a recovery
  (DEBT_SALE).
- every other kind (merchant payable, disbursement, repayment received, customer
  credit) is between the lender and a merchant or borrower: no entry.

Income events carry no product when the ledger posts them per line; they are split over
the line's products by `AllocationBook.line_weights` (each product's funded principal
just before the event's batch), rounding down per product, the remainder to the
heaviest product. A negative event (a reversal) is allocated as its positive amount
with every line negated, so a reversal exactly undoes the original.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date

from node_api.kernel.chain import EntryKind
from node_api.kernel.errors import ConflictError
from node_api.kernel.money import BPS_DENOMINATOR, PPM_DENOMINATOR, Fen, div_floor
from node_api.ledger.settlement_events import (
    CHARGE_OFF_EVENT,
    BatchKind,
    CollectionsEventKind,
    EodStep,
    InterestMethod,
    ProductKey,
    eod_batch_kind,
)
from node_api.ledger.settlement_events import EventKind as LedgerEventKind
from settlement.allocation import (
    AllocationLine,
    EventKind,
    GuaranteeTerms,
    MoneyEvent,
    PartyTerms,
    allocate,
    compute_entries,
)
from settlement.entries import SettlementEntry
from settlement.salts import LeafSalts

_PRINCIPAL_KIND_BY_BATCH: dict[str, EntryKind] = {
    BatchKind.PURCHASE: EntryKind.PRINCIPAL_FUNDED,
    BatchKind.CASH_DRAWDOWN: EntryKind.PRINCIPAL_FUNDED,
    BatchKind.REPAYMENT: EntryKind.PRINCIPAL_REPAID,
    BatchKind.REPAYMENT_REVERSAL: EntryKind.PRINCIPAL_REPAID,
    BatchKind.INSTALLMENT_PREPAYMENT: EntryKind.PRINCIPAL_REPAID,
    BatchKind.PURCHASE_REFUND: EntryKind.REFUND,
    eod_batch_kind(EodStep.CHARGE_OFF): EntryKind.CHARGE_OFF,
}


@dataclass(frozen=True, slots=True)
class LedgerMovement:
    """One `settlement_event` row with its posting batch's kind (amount signed)."""

    event_id: int
    batch_id: int
    batch_kind: str
    kind: str
    as_of: date
    amount_fen: Fen
    credit_line_id: int | None = None
    product_code: str | None = None
    product_version: int | None = None
    partner_ref: str | None = None


@dataclass(frozen=True, slots=True)
class ProductParties:
    """One product version's parties, and its interest rate (for principal-days)."""

    terms: PartyTerms
    interest_method: InterestMethod
    interest_rate: int
    """ppm per day for daily_ppm, bps per year for apr_bps (as `InterestTerms.rate`)."""


@dataclass(frozen=True, slots=True)
class AllocationBook:
    """Everything allocation needs besides the events, loaded once per cycle."""

    lender_id: int
    lender_ref: str
    partner_ids: Mapping[str, int]
    products: Mapping[ProductKey, ProductParties]
    guarantees: Mapping[str, GuaranteeTerms]
    line_weights: Mapping[tuple[int, int], tuple[tuple[ProductKey, int], ...]]
    """(credit line id, batch id) -> (product, funded principal fen) per product of the line."""

    def get_partner_id(self, ref: str | None, event_id: int) -> int:
        partner_id = self.partner_ids.get(ref) if ref is not None else None
        if partner_id is None:
            raise ConflictError(
                f"settlement event {event_id} names partner {ref}, which is not registered",
                field="partner_ref",
                code="partner_not_registered",
            )
        return partner_id

    def get_product(self, key: ProductKey, event_id: int) -> ProductParties:
        parties = self.products.get(key)
        if parties is None:
            raise ConflictError(
                f"settlement event {event_id} is on product {key[0]} v{key[1]}, "
                "which has no terms loaded",
                field="product_code",
            )
        return parties


INCOME_EVENT_KINDS: frozenset[str] = frozenset(
    {
        LedgerEventKind.INTEREST_REPAID,
        LedgerEventKind.FEE_REPAID,
        LedgerEventKind.PENALTY_REPAID,
        CollectionsEventKind.RECOVERY,
        CollectionsEventKind.DEBT_SALE_PROCEEDS,
    }
)
"""Ledger kinds allocated by a product's terms (the book loads the terms of the products
they name), split over a line's products when the row names none."""


def compute_principal_days(amount_fen: Fen, method: InterestMethod, rate: int, basis: int) -> int:
    """Principal x days on which the product's own rate yields `amount_fen` of interest.

    Rounded down. A product priced at zero is treated as priced at 1 bps a year, so a
    funder at any positive rate keeps all the interest collected on its share.
    """
    if method is InterestMethod.DAILY_PPM and rate > 0:
        return div_floor(amount_fen * PPM_DENOMINATOR, rate)
    return div_floor(amount_fen * BPS_DENOMINATOR * basis, max(rate, 1))


def split_by_weight(
    amount_fen: Fen, weights: Sequence[tuple[ProductKey, int]]
) -> list[tuple[ProductKey, Fen]]:
    """Split `amount_fen` by weight: floor per product, the remainder to the heaviest (the
    first of equals); all weights zero counts as equal weights."""
    if len(weights) == 1:
        return [(weights[0][0], amount_fen)]
    values = [max(weight, 0) for _, weight in weights]
    if sum(values) == 0:
        values = [1] * len(weights)
    total = sum(values)
    parts = [div_floor(amount_fen * value, total) for value in values]
    heaviest = values.index(max(values))
    parts[heaviest] += amount_fen - sum(parts)
    return [(key, Fen(part)) for (key, _), part in zip(weights, parts, strict=True)]


def _negate(lines: list[AllocationLine], sign: int) -> list[AllocationLine]:
    if sign > 0:
        return lines
    return [AllocationLine(line.partner_id, line.kind, Fen(-line.amount_fen)) for line in lines]


def _principal_kind(movement: LedgerMovement) -> EntryKind:
    kind = _PRINCIPAL_KIND_BY_BATCH.get(movement.batch_kind)
    if kind is not None:
        return kind
    return EntryKind.PRINCIPAL_FUNDED if movement.amount_fen > 0 else EntryKind.PRINCIPAL_REPAID


def _funding_share(movement: LedgerMovement, book: AllocationBook) -> list[AllocationLine]:
    if movement.partner_ref is None or movement.partner_ref == book.lender_ref:
        return []
    funder_id = book.get_partner_id(movement.partner_ref, movement.event_id)
    kind = _principal_kind(movement)
    if kind is EntryKind.CHARGE_OFF and not _buys_back(movement, book):
        return []  # each funder bears its own share of the loss: nothing moves
    return [
        AllocationLine(funder_id, kind, Fen(-movement.amount_fen)),
        AllocationLine(book.lender_id, kind, movement.amount_fen),
    ]


def _channel_commission(movement: LedgerMovement, book: AllocationBook) -> list[AllocationLine]:
    channel_id = book.get_partner_id(movement.partner_ref, movement.event_id)
    kind = EntryKind.CHANNEL_COMMISSION
    return [
        AllocationLine(book.lender_id, kind, Fen(-movement.amount_fen)),
        AllocationLine(channel_id, kind, movement.amount_fen),
    ]


def _product_parts(
    movement: LedgerMovement, book: AllocationBook, amount_fen: Fen
) -> list[tuple[ProductKey, Fen]]:
    """Which products an income event is on, and how much of it each."""
    if movement.product_code is not None and movement.product_version is not None:
        return [((movement.product_code, movement.product_version), amount_fen)]
    key = (movement.credit_line_id or 0, movement.batch_id)
    weights = book.line_weights.get(key)
    if not weights:
        raise ConflictError(
            f"settlement event {movement.event_id} names no product and its line has none",
            field="product_code",
        )
    return split_by_weight(amount_fen, weights)


def _income(
    event_kind: EventKind,
) -> Callable[[LedgerMovement, AllocationBook], list[AllocationLine]]:
    def allocate_income(movement: LedgerMovement, book: AllocationBook) -> list[AllocationLine]:
        sign = 1 if movement.amount_fen > 0 else -1
        lines: list[AllocationLine] = []
        for key, part_fen in _product_parts(movement, book, Fen(abs(movement.amount_fen))):
            if part_fen == 0:
                continue
            parties = book.get_product(key, movement.event_id)
            principal_days = compute_principal_days(
                part_fen,
                parties.interest_method,
                parties.interest_rate,
                parties.terms.year_basis_days,
            )
            event = MoneyEvent(
                event_kind, part_fen, principal_fen=Fen(principal_days), accrual_days=1
            )
            lines.extend(allocate(event, parties.terms))
        return _negate(lines, sign)

    return allocate_income


def _buys_back(movement: LedgerMovement, book: AllocationBook) -> bool:
    """Whether the lender bought the funders' shares back when the movement's product
    charged off (so the loss, and whatever comes back later, is the lender's alone)."""
    if movement.product_code is None or movement.product_version is None:
        return True
    key = (movement.product_code, movement.product_version)
    return book.get_product(key, movement.event_id).terms.lender_buys_back_charge_offs


def _charge_off(movement: LedgerMovement, book: AllocationBook) -> list[AllocationLine]:
    guarantee = book.guarantees.get(movement.product_code or "")
    if guarantee is None:
        return []
    if _buys_back(movement, book):
        terms = PartyTerms(lender_id=book.lender_id, guarantee=guarantee)
    else:  # the guarantor pays whoever bears the loss: the funders and the lender by share
        key = (movement.product_code or "", movement.product_version or 0)
        terms = replace(book.get_product(key, movement.event_id).terms, guarantee=guarantee)
    event = MoneyEvent(EventKind.GUARANTOR_PAYMENT, Fen(abs(movement.amount_fen)))
    return _negate(list(allocate(event, terms)), 1 if movement.amount_fen > 0 else -1)


def _shared(
    event_kind: EventKind,
) -> Callable[[LedgerMovement, AllocationBook], list[AllocationLine]]:
    """Money shared by funded share, per product (a recovery, a debt sale's price) when
    the funders bore the loss; on a product whose lender bought the funders back at
    charge-off, the lender bore it and keeps what comes back (no entry)."""

    def allocate_shared(movement: LedgerMovement, book: AllocationBook) -> list[AllocationLine]:
        lines: list[AllocationLine] = []
        for key, part_fen in _product_parts(movement, book, Fen(abs(movement.amount_fen))):
            parties = book.get_product(key, movement.event_id)
            if part_fen and not parties.terms.lender_buys_back_charge_offs:
                lines.extend(allocate(MoneyEvent(event_kind, part_fen), parties.terms))
        return _negate(lines, 1 if movement.amount_fen > 0 else -1)

    return allocate_shared


def _guarantor_compensation(movement: LedgerMovement, book: AllocationBook) -> list[AllocationLine]:
    guarantor_id = book.get_partner_id(movement.partner_ref, movement.event_id)
    kind = EntryKind.GUARANTEE_PAYMENT
    return [
        AllocationLine(guarantor_id, kind, Fen(-movement.amount_fen)),
        AllocationLine(book.lender_id, kind, movement.amount_fen),
    ]


def _recovery_to_guarantor(movement: LedgerMovement, book: AllocationBook) -> list[AllocationLine]:
    guarantor_id = book.get_partner_id(movement.partner_ref, movement.event_id)
    kind = EntryKind.RECOVERY
    return [
        AllocationLine(book.lender_id, kind, Fen(-movement.amount_fen)),
        AllocationLine(guarantor_id, kind, movement.amount_fen),
    ]


def _debt_sale(movement: LedgerMovement, book: AllocationBook) -> list[AllocationLine]:
    buyer_id = book.get_partner_id(movement.partner_ref, movement.event_id)
    kind = EntryKind.DEBT_SALE
    paid = [
        AllocationLine(buyer_id, kind, Fen(-movement.amount_fen)),
        AllocationLine(book.lender_id, kind, movement.amount_fen),
    ]
    return paid + _shared(EventKind.DEBT_SALE)(movement, book)


_HANDLERS: dict[str, Callable[[LedgerMovement, AllocationBook], list[AllocationLine]]] = {
    LedgerEventKind.FUNDING_SHARE: _funding_share,
    LedgerEventKind.CHANNEL_COMMISSION: _channel_commission,
    LedgerEventKind.INTEREST_REPAID: _income(EventKind.INTEREST_COLLECTED),
    LedgerEventKind.FEE_REPAID: _income(EventKind.FEE_COLLECTED),
    LedgerEventKind.PENALTY_REPAID: _income(EventKind.FEE_COLLECTED),
    CHARGE_OFF_EVENT: _charge_off,
    CollectionsEventKind.GUARANTOR_COMPENSATION: _guarantor_compensation,
    CollectionsEventKind.RECOVERY_TO_GUARANTOR: _recovery_to_guarantor,
    CollectionsEventKind.RECOVERY: _shared(EventKind.RECOVERY),
    CollectionsEventKind.DEBT_SALE_PROCEEDS: _debt_sale,
}


PARTNER_EVENT_KINDS: frozenset[str] = frozenset(_HANDLERS)
"""Ledger kinds that may move money between partners (the others never do)."""


def allocate_movement(movement: LedgerMovement, book: AllocationBook) -> list[AllocationLine]:
    """The balanced lines of one ledger event (none for kinds between other parties)."""
    handler = _HANDLERS.get(movement.kind)
    if handler is None or movement.amount_fen == 0:
        return []
    return [line for line in handler(movement, book) if line.amount_fen != 0]


def compute_cycle_entries(
    cycle_id: int, movements: Sequence[LedgerMovement], book: AllocationBook, salts: LeafSalts
) -> list[SettlementEntry]:
    """Every entry of a cycle, in event-id order, entry ids 1..n, source_ref = event id,
    each salted from the node's secret (`settlement.salts`)."""
    entries: list[SettlementEntry] = []
    for movement in sorted(movements, key=lambda item: item.event_id):
        entries += compute_entries(
            allocate_movement(movement, book),
            cycle_id=cycle_id,
            first_entry_id=len(entries) + 1,
            source_ref=str(movement.event_id),
            salts=salts,
        )
    return entries
