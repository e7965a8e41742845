"""Ledger events to settlement entries: conservation over random event streams, the meaning
of each event kind, reversals, product weights and refusals."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node_api.kernel.chain import EntryKind
from node_api.kernel.errors import ConflictError
from node_api.ledger.settlement_events import InterestMethod
from settlement.allocate_events import (
    AllocationBook,
    LedgerMovement,
    ProductParties,
    allocate_movement,
    compute_cycle_entries,
    compute_principal_days,
    split_by_weight,
)
from settlement.allocation import FunderShare, GuaranteeTerms, PartyTerms
from settlement.netting import net_positions
from settlement.salts import LeafSalts

LENDER, BANK_A, BANK_B, APP, GUARD = 1, 2, 3, 4, 5
REV = ("REV1", 1)
CASH = ("CASH1", 2)
DAY = date(2025, 3, 3)
SALTS = LeafSalts(b"test-allocate-events-leaf-salt-secret")


def _book(
    line_weights: dict[tuple[int, int], tuple[tuple[tuple[str, int], int], ...]],
) -> AllocationBook:
    rev = PartyTerms(LENDER, (FunderShare(BANK_A, 500_000, 600), FunderShare(BANK_B, 200_000, 500)))
    cash = PartyTerms(LENDER, (FunderShare(BANK_A, 700_000, 900),), year_basis_days=360)
    return AllocationBook(
        lender_id=LENDER,
        lender_ref="lender",
        partner_ids={"lender": LENDER, "bank-a": BANK_A, "bank-b": BANK_B, "app": APP},
        products={
            REV: ProductParties(rev, InterestMethod.DAILY_PPM, 500),
            CASH: ProductParties(cash, InterestMethod.APR_BPS, 1_800),
        },
        guarantees={"REV1": GuaranteeTerms(GUARD, 800_000)},
        line_weights=line_weights,
    )


BOOK = _book({(7, 1): ((REV, 1),)})

_KINDS = [
    "funding_share",
    "channel_commission",
    "interest_repaid",
    "fee_repaid",
    "penalty_repaid",
    "charge_off",
    "merchant_payable",
    "repayment_received",
    "principal_repaid",
    "customer_credit",
]
_BATCHES = ["purchase", "repayment", "repayment_reversal", "purchase_refund", "eod_charge_off"]


@st.composite
def movement_streams(draw: st.DrawFn) -> tuple[AllocationBook, list[LedgerMovement]]:
    """Random events on two lines: line 7 with REV1 only, line 8 with REV1 and CASH1 whose
    weights (funded principal per product) are drawn too."""
    count = draw(st.integers(1, 40))
    weights: dict[tuple[int, int], tuple[tuple[tuple[str, int], int], ...]] = {}
    movements = []
    for event_id in range(1, count + 1):
        kind = draw(st.sampled_from(_KINDS))
        amount = draw(st.integers(1, 5_000_000)) * draw(st.sampled_from([1, 1, 1, -1]))
        line_id = draw(st.sampled_from([7, 8]))
        batch_id = event_id
        product: tuple[str, int] | None = None
        ref = None
        if kind == "funding_share":
            ref = draw(st.sampled_from(["lender", "bank-a", "bank-b"]))
            product = REV
        elif kind == "channel_commission":
            ref = "app"
        elif kind == "charge_off":
            product = draw(st.sampled_from([REV, CASH]))
            amount = abs(amount)
        if kind in ("interest_repaid", "fee_repaid", "penalty_repaid"):
            if line_id == 7:
                weights[(7, batch_id)] = ((REV, 1),)
            else:
                pair = draw(st.tuples(st.integers(0, 10**7), st.integers(0, 10**7)))
                weights[(8, batch_id)] = ((CASH, pair[0]), (REV, pair[1]))
        movements.append(
            LedgerMovement(
                event_id=event_id,
                batch_id=batch_id,
                batch_kind=draw(st.sampled_from(_BATCHES)),
                kind=kind,
                as_of=DAY,
                amount_fen=amount,
                credit_line_id=line_id,
                product_code=None if product is None else product[0],
                product_version=None if product is None else product[1],
                partner_ref=ref,
            )
        )
    return _book(weights), movements


def _expected_funder_share(movement: LedgerMovement, book: AllocationBook) -> dict[int, int]:
    """What each funder must receive of an income event (floor of its share, per product)."""
    weights = book.line_weights[(movement.credit_line_id or 0, movement.batch_id)]
    expected: dict[int, int] = defaultdict(int)
    for key, part in split_by_weight(abs(movement.amount_fen), weights):
        for funder in book.products[key].terms.funders:
            expected[funder.partner_id] += part * funder.share_ppm // 1_000_000
    sign = 1 if movement.amount_fen > 0 else -1
    return {partner: sign * amount for partner, amount in expected.items() if amount}


@given(movement_streams())
def test_every_event_balances_and_moves_exactly_its_amount_between_parties(
    stream: tuple[AllocationBook, list[LedgerMovement]],
) -> None:
    book, movements = stream
    entries = compute_cycle_entries(20250303, movements, book, SALTS)
    assert [entry.entry_id for entry in entries] == list(range(1, len(entries) + 1))
    assert all(e.salt == SALTS.salt(20250303, e.entry_id, e.partner_id) for e in entries)
    assert sum(net_positions(entries).values()) == 0
    by_event = defaultdict(list)
    for entry in entries:
        by_event[int(entry.source_ref)].append(entry)
    for movement in movements:
        lines = by_event.pop(movement.event_id, [])
        assert sum(line.amount_fen for line in lines) == 0
        amounts = {line.partner_id: line.amount_fen for line in lines}
        if movement.kind == "funding_share" and movement.partner_ref != "lender":
            funder = book.partner_ids[str(movement.partner_ref)]
            assert amounts == {funder: -movement.amount_fen, LENDER: movement.amount_fen}
        elif movement.kind == "channel_commission":
            assert amounts == {APP: movement.amount_fen, LENDER: -movement.amount_fen}
        elif movement.kind in ("interest_repaid", "fee_repaid", "penalty_repaid"):
            share_kind = (
                EntryKind.INTEREST_SHARE
                if movement.kind == "interest_repaid"
                else EntryKind.FEE_SHARE
            )
            received: dict[int, int] = defaultdict(int)
            for line in lines:
                if line.kind is share_kind and line.partner_id != LENDER:
                    received[line.partner_id] += line.amount_fen
            assert dict(received) == _expected_funder_share(movement, book)
        elif movement.kind == "charge_off" and movement.product_code == "REV1":
            paid = movement.amount_fen * 800_000 // 1_000_000
            assert amounts == ({GUARD: -paid, LENDER: paid} if paid else {})
        else:
            assert lines == []
    assert not by_event


@given(movement_streams(), st.data())
def test_a_stream_cut_into_cycles_puts_each_event_in_exactly_one_balanced_cycle(
    stream: tuple[AllocationBook, list[LedgerMovement]], data: st.DataObject
) -> None:
    book, movements = stream
    cut = data.draw(st.integers(0, len(movements)))
    first = compute_cycle_entries(1, movements[:cut], book, SALTS)
    second = compute_cycle_entries(2, movements[cut:], book, SALTS)
    whole = compute_cycle_entries(3, movements, book, SALTS)
    for cycle in (first, second):
        assert sum(entry.amount_fen for entry in cycle) == 0
    sources = [entry.source_ref for entry in first + second]
    assert sources == [entry.source_ref for entry in whole]
    assert {int(s) for s in (e.source_ref for e in first)}.isdisjoint(
        int(e.source_ref) for e in second
    )


@given(st.integers(1, 10**9), st.lists(st.integers(0, 10**9), min_size=1, max_size=5))
def test_split_by_weight_always_sums_to_the_amount(amount: int, weights: list[int]) -> None:
    keyed = [((f"P{index}", 1), weight) for index, weight in enumerate(weights)]
    parts = split_by_weight(amount, keyed)
    assert sum(part for _, part in parts) == amount
    assert all(part >= 0 for _, part in parts)


def test_split_by_weight_gives_the_remainder_to_the_heaviest_product() -> None:
    parts = split_by_weight(100, [(CASH, 1), (REV, 2)])
    assert parts == [(CASH, 33), (REV, 67)]
    assert split_by_weight(7, [(CASH, 0), (REV, 0)]) == [(CASH, 4), (REV, 3)]


def _interest(amount_fen: int, event_id: int = 1) -> LedgerMovement:
    return LedgerMovement(event_id, 1, "repayment", "interest_repaid", DAY, amount_fen, 7)


def test_a_funder_keeps_interest_at_its_own_rate_and_pays_the_rest_as_service_fee() -> None:
    # REV1 charges 500 ppm a day = 18.25 % a year; bank-a earns 6 % on its 50 % share.
    lines = allocate_movement(_interest(36_500), BOOK)
    bank_a = {line.kind: line.amount_fen for line in lines if line.partner_id == BANK_A}
    assert bank_a[EntryKind.INTEREST_SHARE] == 18_250
    kept = bank_a[EntryKind.INTEREST_SHARE] + bank_a[EntryKind.SERVICE_FEE]
    assert kept == 6_000  # 18,250 x 6 / 18.25
    assert sum(line.amount_fen for line in lines) == 0


def test_principal_days_reproduce_the_interest_at_the_product_rate() -> None:
    days = compute_principal_days(36_500, InterestMethod.DAILY_PPM, 500, 365)
    assert days * 500 // 1_000_000 == 36_500
    apr_days = compute_principal_days(1_800, InterestMethod.APR_BPS, 1_800, 360)
    assert apr_days * 1_800 // (10_000 * 360) == 1_800


def test_a_reversal_exactly_undoes_the_original_event() -> None:
    original = allocate_movement(_interest(12_345), BOOK)
    reversal = allocate_movement(replace(_interest(-12_345), event_id=2), BOOK)
    assert [(line.partner_id, line.kind, -line.amount_fen) for line in reversal] == [
        (line.partner_id, line.kind, line.amount_fen) for line in original
    ]


def test_principal_kind_follows_the_posting_batch() -> None:
    def share(batch_kind: str, amount_fen: int) -> EntryKind:
        movement = LedgerMovement(
            1, 1, batch_kind, "funding_share", DAY, amount_fen, 7, "REV1", 1, "bank-a"
        )
        return allocate_movement(movement, BOOK)[0].kind

    assert share("purchase", 700) is EntryKind.PRINCIPAL_FUNDED
    assert share("repayment", -700) is EntryKind.PRINCIPAL_REPAID
    assert share("purchase_refund", -700) is EntryKind.REFUND
    assert share("eod_charge_off", -700) is EntryKind.CHARGE_OFF


def test_the_lenders_own_share_and_borrower_movements_make_no_entries() -> None:
    own = LedgerMovement(1, 1, "purchase", "funding_share", DAY, 300, 7, "REV1", 1, "lender")
    merchant = LedgerMovement(2, 1, "purchase", "merchant_payable", DAY, 1_000, 7, "REV1", 1)
    assert compute_cycle_entries(1, [own, merchant], BOOK, SALTS) == []


def test_RevertWhen_an_event_names_an_unregistered_partner() -> None:
    movement = LedgerMovement(1, 1, "purchase", "channel_commission", DAY, 55, 7, "REV1", 1, "x")
    with pytest.raises(ConflictError) as raised:
        allocate_movement(movement, BOOK)
    assert raised.value.code == "partner_not_registered"


def test_RevertWhen_an_income_event_has_no_product_to_go_to() -> None:
    with pytest.raises(ConflictError):
        allocate_movement(replace(_interest(100), credit_line_id=99), BOOK)
