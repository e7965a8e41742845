"""Allocation of one ledger money movement to the parties of a product.

Signs: every line is from the partner's side, as in `settlement.entries`: positive = the
partner receives, negative = the partner pays. The lender is the hub: it disburses to
merchants and collects from borrowers, so each movement is settled between the lender and
the other parties, and every event's lines sum to zero (for each entry kind, too).

Shares and rounding (stated once, applied everywhere): an amount is split by funding share
in parts per million; each funder gets `floor(amount * share_ppm / 1_000_000)` and the
lender gets the rest, i.e. its own share (1,000,000 ppm minus the funders' shares) plus
every rounding remainder. Nothing is lost: the parts of a split always add up to the amount.
Principal that leaves the pool (repayment, refund, charge-off buyback) is split
cumulatively over the loan: a funder gets `floor(after * share) - floor(before * share)`,
where `before`/`after` are the principal already returned before/after this event. So once
a loan is settled each funder has received back exactly the `floor(principal * share)` it
funded; the lender holds the running remainder and may hand some back in a later event.

What each event means (`amount_fen` is always the ledger movement, ≥ 0):

- PURCHASE_FUNDED, principal the lender disbursed to the merchant: each funder pays its
  share (−, PRINCIPAL_FUNDED); the lender receives their sum (+).
- PRINCIPAL_REPAID, principal the lender collected: each funder receives its cumulative
  share (+, PRINCIPAL_REPAID); the lender pays their sum (−).
- INTEREST_COLLECTED, interest the lender collected: each funder receives the interest
  collected on its share (+, INTEREST_SHARE) and pays back, as the lender's service fee,
  whatever exceeds the interest it earned at its own rate (−, SERVICE_FEE); the lender
  takes the opposite side of both.
- FEE_COLLECTED, fees the lender collected (late fees, installment fees): funders receive
  their share (+, FEE_SHARE); the lender pays (−).
- CHANNEL_COMMISSION, `amount_fen` is the purchase amount: the lender pays the channel
  `floor(amount * commission_bps / 10_000)` (CHANNEL_COMMISSION) and the channel pays the
  lender `floor(amount * merchant_discount_bps / 10_000)` (MERCHANT_DISCOUNT); both round
  down, in favour of the payer.
- REFUND, principal the merchant refunded to the lender: funders receive their cumulative
  share (+, REFUND); the channel gives back the commission on the refunded amount and
  gets back the merchant discount on it.
- CHARGE_OFF, principal written off: with `lender_buys_back_charge_offs` the lender buys
  the funders' shares (funders +, lender −, CHARGE_OFF); otherwise each party bears its
  own share of the loss and nothing moves.
- GUARANTOR_PAYMENT, the defaulted amount the guarantee covers: the guarantor pays
  `floor(amount * guarantee share_ppm / 1_000_000)` (−, GUARANTEE_PAYMENT), split among
  the funders and the lender by funding share (+).

- RECOVERY, money collected on a charged-off loan (after any guarantor was paid back):
  split over the funding split, the lender's own share included, by largest remainder
  (`split_largest_remainder`); each funder receives its part (+, RECOVERY), the lender
  pays their sum (−).
- DEBT_SALE, the price a collection agency paid for a charged-off loan: split exactly as
  a recovery (+ funders, − lender, DEBT_SALE); the agency's payment to the lender is
  settled beside it by the caller, who knows the buyer.

A funder's earned interest is `half_even(floor(principal * share_ppm / 1e6) * rate_bps *
accrual_days / (10_000 * year_basis_days))`, capped by the interest collected on its share.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import IntEnum

from node_api.kernel.chain import EntryKind
from node_api.kernel.errors import CreditNetValueError
from node_api.kernel.money import (
    BPS_DENOMINATOR,
    FEN_ZERO,
    PPM_DENOMINATOR,
    Fen,
    div_floor,
    div_half_even,
)
from settlement.entries import SettlementEntry
from settlement.salts import LeafSalts

_PARTNER_ID_MAX = 2**32 - 1


class EventKind(IntEnum):
    """Ledger movements that move money between parties (stable numbers)."""

    PURCHASE_FUNDED = 1
    PRINCIPAL_REPAID = 2
    INTEREST_COLLECTED = 3
    FEE_COLLECTED = 4
    CHANNEL_COMMISSION = 5
    REFUND = 6
    CHARGE_OFF = 7
    GUARANTOR_PAYMENT = 8
    RECOVERY = 9
    DEBT_SALE = 10


@dataclass(frozen=True, slots=True)
class FunderShare:
    """A joint-lending funder: its share of every loan and the annual rate it earns."""

    partner_id: int
    share_ppm: int
    rate_bps: int


@dataclass(frozen=True, slots=True)
class ChannelTerms:
    """The channel that brought the purchase: commission it earns, discount it pays."""

    partner_id: int
    commission_bps: int
    merchant_discount_bps: int = 0


@dataclass(frozen=True, slots=True)
class GuaranteeTerms:
    """The guarantor and the share of a defaulted amount it pays."""

    partner_id: int
    share_ppm: int


@dataclass(frozen=True, slots=True)
class PartyTerms:
    """A product's parties. The lender funds whatever share the funders do not."""

    lender_id: int
    funders: tuple[FunderShare, ...] = ()
    channel: ChannelTerms | None = None
    guarantee: GuaranteeTerms | None = None
    year_basis_days: int = 365
    lender_buys_back_charge_offs: bool = True

    def __post_init__(self) -> None:
        _check_partner_ids(self)
        for funder in self.funders:
            if not 0 < funder.share_ppm <= PPM_DENOMINATOR:
                raise CreditNetValueError("funder share must be in (0, 1e6] ppm", field="funders")
            if funder.rate_bps < 0:
                raise CreditNetValueError("funder rate must not be negative", field="funders")
        if sum(funder.share_ppm for funder in self.funders) > PPM_DENOMINATOR:
            raise CreditNetValueError("funder shares exceed 1e6 ppm", field="funders")
        if self.channel is not None and not (
            0 <= self.channel.commission_bps <= BPS_DENOMINATOR
            and 0 <= self.channel.merchant_discount_bps <= BPS_DENOMINATOR
        ):
            raise CreditNetValueError("channel rates must be in [0, 10000] bps", field="channel")
        if self.guarantee is not None and not 0 < self.guarantee.share_ppm <= PPM_DENOMINATOR:
            raise CreditNetValueError("guarantee share must be in (0, 1e6] ppm", field="guarantee")
        if self.year_basis_days <= 0:
            raise CreditNetValueError("year basis must be positive", field="year_basis_days")

    @property
    def lender_share_ppm(self) -> int:
        return PPM_DENOMINATOR - sum(funder.share_ppm for funder in self.funders)


def _check_partner_ids(terms: PartyTerms) -> None:
    """Every role is a distinct partner with a uint32 id, so each line has one meaning."""
    ids = [terms.lender_id, *(funder.partner_id for funder in terms.funders)]
    if terms.channel is not None:
        ids.append(terms.channel.partner_id)
    if terms.guarantee is not None:
        ids.append(terms.guarantee.partner_id)
    if any(not 0 <= partner_id <= _PARTNER_ID_MAX for partner_id in ids):
        raise CreditNetValueError("partner ids must fit uint32", field="partner_id")
    if len(set(ids)) != len(ids):
        raise CreditNetValueError("each party must be a different partner", field="partner_id")


@dataclass(frozen=True, slots=True)
class MoneyEvent:
    """One ledger movement. Interest events carry the principal and days they accrued on;
    principal-reducing events carry the loan's principal already returned before them."""

    kind: EventKind
    amount_fen: Fen
    source_ref: str = ""
    principal_fen: Fen = FEN_ZERO
    accrual_days: int = 0
    principal_reduced_before_fen: Fen = FEN_ZERO

    def __post_init__(self) -> None:
        for field in (
            "amount_fen",
            "principal_fen",
            "accrual_days",
            "principal_reduced_before_fen",
        ):
            if getattr(self, field) < 0:
                raise CreditNetValueError("must not be negative", field=field)


@dataclass(frozen=True, slots=True)
class AllocationLine:
    """One party's signed part of an event (+ receives, − pays), before it gets an id."""

    partner_id: int
    kind: EntryKind
    amount_fen: Fen


def split_by_share(amount_fen: Fen, terms: PartyTerms) -> dict[int, Fen]:
    """Split `amount_fen` by funding share: floor per funder, the remainder to the lender.

    The parts always sum to `amount_fen`; the lender's part is its own share plus rounding.
    """
    return split_cumulative(amount_fen, FEN_ZERO, terms)


def split_cumulative(amount_fen: Fen, before_fen: Fen, terms: PartyTerms) -> dict[int, Fen]:
    """Split the principal returned between `before_fen` and `before_fen + amount_fen`.

    A funder gets `floor((before + amount) * share) - floor(before * share)`; the lender the
    rest, which may be negative when it hands back a remainder it kept earlier. Summed over
    a loan's whole life each funder gets exactly `floor(principal * share)`.
    """
    after_fen = before_fen + amount_fen
    parts = {
        funder.partner_id: Fen(
            div_floor(after_fen * funder.share_ppm, PPM_DENOMINATOR)
            - div_floor(before_fen * funder.share_ppm, PPM_DENOMINATOR)
        )
        for funder in terms.funders
    }
    parts[terms.lender_id] = Fen(amount_fen - sum(parts.values()))
    return parts


def split_largest_remainder(amount_fen: Fen, terms: PartyTerms) -> dict[int, Fen]:
    """Split `amount_fen` over every funding share, the lender's own included, by largest
    remainder: each party gets `floor(amount * share_ppm / 1e6)`, and the fen those floors
    leave (fewer than the number of parties) go one each to the parties with the largest
    remainders, the first listed among equals (funders in order, then the lender). The parts
    sum to `amount_fen` exactly."""
    shares = [(funder.partner_id, funder.share_ppm) for funder in terms.funders]
    shares.append((terms.lender_id, terms.lender_share_ppm))
    parts: dict[int, Fen] = {}
    remainders: list[tuple[int, int, int]] = []
    for position, (partner_id, share_ppm) in enumerate(shares):
        exact = amount_fen * share_ppm
        parts[partner_id] = Fen(div_floor(exact, PPM_DENOMINATOR))
        remainders.append((-(exact - parts[partner_id] * PPM_DENOMINATOR), position, partner_id))
    left_fen = amount_fen - sum(parts.values())
    for _, _, partner_id in sorted(remainders)[:left_fen]:
        parts[partner_id] = Fen(parts[partner_id] + 1)
    return parts


def compute_funder_interest_fen(
    principal_fen: Fen, share_ppm: int, rate_bps: int, accrual_days: int, year_basis_days: int
) -> Fen:
    """Interest a funder earned at its own rate on its share of principal, half-even."""
    share_principal_fen = div_floor(principal_fen * share_ppm, PPM_DENOMINATOR)
    return Fen(
        div_half_even(
            share_principal_fen * rate_bps * accrual_days, BPS_DENOMINATOR * year_basis_days
        )
    )


def _hub_lines(
    funder_parts: dict[int, Fen], lender_id: int, kind: EntryKind, sign: int
) -> list[AllocationLine]:
    """Funders get `sign * part`; the lender one counter line; zero lines are left out."""
    lines = [
        AllocationLine(partner_id, kind, Fen(sign * part))
        for partner_id, part in funder_parts.items()
        if part
    ]
    total = sum(funder_parts.values())
    if total:
        lines.append(AllocationLine(lender_id, kind, Fen(-sign * total)))
    return lines


def _pair(payer_id: int, payee_id: int, kind: EntryKind, amount_fen: Fen) -> list[AllocationLine]:
    """One payment between two parties as two lines, or nothing when it is zero."""
    if amount_fen == 0:
        return []
    return [
        AllocationLine(payer_id, kind, Fen(-amount_fen)),
        AllocationLine(payee_id, kind, amount_fen),
    ]


def _funder_parts(parts: dict[int, Fen], terms: PartyTerms) -> dict[int, Fen]:
    return {funder.partner_id: parts[funder.partner_id] for funder in terms.funders}


def _purchase_funded(event: MoneyEvent, terms: PartyTerms) -> list[AllocationLine]:
    parts = _funder_parts(split_by_share(event.amount_fen, terms), terms)
    return _hub_lines(parts, terms.lender_id, EntryKind.PRINCIPAL_FUNDED, -1)


def _principal_returned(
    kind: EntryKind,
) -> Callable[[MoneyEvent, PartyTerms], list[AllocationLine]]:
    def allocate_returned(event: MoneyEvent, terms: PartyTerms) -> list[AllocationLine]:
        split = split_cumulative(event.amount_fen, event.principal_reduced_before_fen, terms)
        return _hub_lines(_funder_parts(split, terms), terms.lender_id, kind, +1)

    return allocate_returned


def _interest_collected(event: MoneyEvent, terms: PartyTerms) -> list[AllocationLine]:
    collected = _funder_parts(split_by_share(event.amount_fen, terms), terms)
    service_fee: dict[int, Fen] = {}
    for funder in terms.funders:
        earned_fen = compute_funder_interest_fen(
            event.principal_fen,
            funder.share_ppm,
            funder.rate_bps,
            event.accrual_days,
            terms.year_basis_days,
        )
        kept_fen = min(collected[funder.partner_id], earned_fen)
        service_fee[funder.partner_id] = Fen(collected[funder.partner_id] - kept_fen)
    return _hub_lines(collected, terms.lender_id, EntryKind.INTEREST_SHARE, +1) + _hub_lines(
        service_fee, terms.lender_id, EntryKind.SERVICE_FEE, -1
    )


def _fee_collected(event: MoneyEvent, terms: PartyTerms) -> list[AllocationLine]:
    parts = _funder_parts(split_by_share(event.amount_fen, terms), terms)
    return _hub_lines(parts, terms.lender_id, EntryKind.FEE_SHARE, +1)


def _channel_amounts(amount_fen: Fen, terms: PartyTerms) -> tuple[int, Fen, Fen]:
    """(channel id, commission, merchant discount) on `amount_fen`, both rounded down."""
    if terms.channel is None:
        raise CreditNetValueError("the product has no channel partner", field="kind")
    commission_fen = Fen(div_floor(amount_fen * terms.channel.commission_bps, BPS_DENOMINATOR))
    discount_fen = Fen(div_floor(amount_fen * terms.channel.merchant_discount_bps, BPS_DENOMINATOR))
    return terms.channel.partner_id, commission_fen, discount_fen


def _channel_commission(event: MoneyEvent, terms: PartyTerms) -> list[AllocationLine]:
    channel_id, commission_fen, discount_fen = _channel_amounts(event.amount_fen, terms)
    lender_id = terms.lender_id
    return _pair(lender_id, channel_id, EntryKind.CHANNEL_COMMISSION, commission_fen) + _pair(
        channel_id, lender_id, EntryKind.MERCHANT_DISCOUNT, discount_fen
    )


def _refund(event: MoneyEvent, terms: PartyTerms) -> list[AllocationLine]:
    lines = _principal_returned(EntryKind.REFUND)(event, terms)
    if terms.channel is None:
        return lines
    channel_id, commission_fen, discount_fen = _channel_amounts(event.amount_fen, terms)
    lender_id = terms.lender_id
    return (
        lines
        + _pair(channel_id, lender_id, EntryKind.CHANNEL_COMMISSION, commission_fen)
        + _pair(lender_id, channel_id, EntryKind.MERCHANT_DISCOUNT, discount_fen)
    )


def _charge_off(event: MoneyEvent, terms: PartyTerms) -> list[AllocationLine]:
    if not terms.lender_buys_back_charge_offs:
        return []
    return _principal_returned(EntryKind.CHARGE_OFF)(event, terms)


def _guarantor_payment(event: MoneyEvent, terms: PartyTerms) -> list[AllocationLine]:
    if terms.guarantee is None:
        raise CreditNetValueError("the product has no guarantor", field="kind")
    paid_fen = Fen(div_floor(event.amount_fen * terms.guarantee.share_ppm, PPM_DENOMINATOR))
    if paid_fen == 0:
        return []
    kind = EntryKind.GUARANTEE_PAYMENT
    lines = [AllocationLine(terms.guarantee.partner_id, kind, Fen(-paid_fen))]
    for partner_id, part in split_by_share(paid_fen, terms).items():
        if part:
            lines.append(AllocationLine(partner_id, kind, part))
    return lines


def _shared_by_largest_remainder(
    kind: EntryKind,
) -> Callable[[MoneyEvent, PartyTerms], list[AllocationLine]]:
    def allocate_shared(event: MoneyEvent, terms: PartyTerms) -> list[AllocationLine]:
        split = split_largest_remainder(event.amount_fen, terms)
        return _hub_lines(_funder_parts(split, terms), terms.lender_id, kind, +1)

    return allocate_shared


_ALLOCATORS: dict[EventKind, Callable[[MoneyEvent, PartyTerms], list[AllocationLine]]] = {
    EventKind.PURCHASE_FUNDED: _purchase_funded,
    EventKind.PRINCIPAL_REPAID: _principal_returned(EntryKind.PRINCIPAL_REPAID),
    EventKind.INTEREST_COLLECTED: _interest_collected,
    EventKind.FEE_COLLECTED: _fee_collected,
    EventKind.CHANNEL_COMMISSION: _channel_commission,
    EventKind.REFUND: _refund,
    EventKind.CHARGE_OFF: _charge_off,
    EventKind.GUARANTOR_PAYMENT: _guarantor_payment,
    EventKind.RECOVERY: _shared_by_largest_remainder(EntryKind.RECOVERY),
    EventKind.DEBT_SALE: _shared_by_largest_remainder(EntryKind.DEBT_SALE),
}


def allocate(event: MoneyEvent, terms: PartyTerms) -> tuple[AllocationLine, ...]:
    """The balanced lines of one event (Σ = 0, and Σ = 0 per entry kind); see module doc."""
    return tuple(_ALLOCATORS[event.kind](event, terms))


def allocate_to_entries(
    event: MoneyEvent,
    terms: PartyTerms,
    *,
    cycle_id: int,
    first_entry_id: int,
    salts: LeafSalts,
) -> list[SettlementEntry]:
    """`allocate`, numbered from `first_entry_id`, salted (`settlement.salts`) and tagged
    with the event's source_ref."""
    return compute_entries(
        allocate(event, terms),
        cycle_id=cycle_id,
        first_entry_id=first_entry_id,
        source_ref=event.source_ref,
        salts=salts,
    )


def compute_entries(
    lines: Iterable[AllocationLine],
    *,
    cycle_id: int,
    first_entry_id: int,
    source_ref: str,
    salts: LeafSalts,
) -> list[SettlementEntry]:
    """One event's lines as cycle entries: numbered from `first_entry_id` in their order,
    each salted from the node's secret (`settlement.salts`) and tagged with `source_ref`."""
    salt = salts.salt
    return [
        SettlementEntry(
            cycle_id,
            entry_id,
            line.partner_id,
            line.kind,
            line.amount_fen,
            salt(cycle_id, entry_id, line.partner_id),
            source_ref,
        )
        for entry_id, line in enumerate(lines, start=first_entry_id)
    ]
