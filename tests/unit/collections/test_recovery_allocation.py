"""Hand-computed allocation of what collections posts: recoveries shared by funded share
(largest remainder), a guarantor's compensation and its payback, a debt sale's price, and
the split of a sale's price over its lines. Every line of every event nets to zero."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from node_api.collections.debt_sale import split_by_face
from node_api.collections.recoveries import split_over_products
from node_api.kernel.chain import EntryKind
from node_api.ledger.settlement_events import (
    BatchKind,
    CollectionsEventKind,
    EodStep,
    InterestMethod,
    eod_batch_kind,
)
from node_api.ledger.settlement_events import EventKind as LedgerEventKind
from settlement.allocate_events import (
    AllocationBook,
    LedgerMovement,
    ProductParties,
    allocate_movement,
)
from settlement.allocation import (
    AllocationLine,
    EventKind,
    FunderShare,
    MoneyEvent,
    PartyTerms,
    allocate,
    split_largest_remainder,
)

LENDER, BANK_A, BANK_B, GUARD, AGENCY = 1, 2, 3, 6, 7
TERMS = PartyTerms(
    LENDER,
    (FunderShare(BANK_A, 500_000, 600), FunderShare(BANK_B, 200_000, 500)),
    lender_buys_back_charge_offs=False,  # the funders bear the loss, so they share recoveries
)
"""30 % lender, 50 % bank-a, 20 % bank-b."""
THIRDS = PartyTerms(LENDER, (FunderShare(BANK_A, 333_333, 600), FunderShare(BANK_B, 333_333, 500)))
"""333,334 ppm lender, 333,333 ppm each bank."""
BOOK = AllocationBook(
    lender_id=LENDER,
    lender_ref="lender",
    partner_ids={"lender": LENDER, "bank-a": BANK_A, "bank-b": BANK_B, "guard": GUARD,
                 "agency-a": AGENCY},
    products={("GUAR1", 1): ProductParties(TERMS, InterestMethod.DAILY_PPM, 500)},
    guarantees={},
    line_weights={},
)  # fmt: skip


def _movement(kind: str, amount_fen: int, **fields: object) -> LedgerMovement:
    fields.setdefault("batch_kind", BatchKind.RECOVERY)
    return LedgerMovement(
        event_id=9, batch_id=4, kind=kind,
        as_of=date(2025, 5, 2), amount_fen=amount_fen, credit_line_id=17, **fields,  # type: ignore[arg-type]
    )  # fmt: skip


def _nets(lines: list[AllocationLine] | tuple[AllocationLine, ...]) -> dict[int, int]:
    nets: dict[int, int] = {}
    for line in lines:
        nets[line.partner_id] = nets.get(line.partner_id, 0) + line.amount_fen
    assert sum(nets.values()) == 0
    return nets


def test_a_recovery_is_split_by_largest_remainder() -> None:
    # 10,001: exact 3,000.3 (lender), 5,000.5 (bank-a), 2,000.2 (bank-b); floors sum to
    # 10,000 and the 1 fen left goes to the largest remainder, bank-a's .5.
    assert split_largest_remainder(10_001, TERMS) == {BANK_A: 5_001, BANK_B: 2_000, LENDER: 3_000}
    # 10,001 in thirds: exact 3,333.663333 (each bank) and 3,333.673334 (lender); floors
    # sum to 9,999; the 2 fen left go to the lender (.673334) and then to bank-a, the
    # first listed of the two equal .663333.
    assert split_largest_remainder(10_001, THIRDS) == {BANK_A: 3_334, BANK_B: 3_333, LENDER: 3_334}
    lines = allocate(MoneyEvent(EventKind.RECOVERY, 10_001), TERMS)
    assert lines == (
        AllocationLine(BANK_A, EntryKind.RECOVERY, 5_001),
        AllocationLine(BANK_B, EntryKind.RECOVERY, 2_000),
        AllocationLine(LENDER, EntryKind.RECOVERY, -7_001),
    )


@pytest.mark.parametrize("amount_fen", [1, 2, 3, 7, 999, 10_001, 123_456_789])
def test_the_parts_of_a_split_always_sum_to_the_amount(amount_fen: int) -> None:
    for terms in (TERMS, THIRDS):
        parts = split_largest_remainder(amount_fen, terms)
        assert sum(parts.values()) == amount_fen and min(parts.values()) >= 0


def test_a_recovery_event_is_shared_on_its_product_and_a_reversal_undoes_it() -> None:
    event = _movement(CollectionsEventKind.RECOVERY, 1_000, product_code="GUAR1", product_version=1)
    # 1,000: bank-a 500, bank-b 200 exactly; the lender keeps its 300 and pays out 700.
    assert _nets(allocate_movement(event, BOOK)) == {BANK_A: 500, BANK_B: 200, LENDER: -700}
    reversal = _movement(
        CollectionsEventKind.RECOVERY, -1_000, product_code="GUAR1", product_version=1
    )
    assert _nets(allocate_movement(reversal, BOOK)) == {BANK_A: -500, BANK_B: -200, LENDER: 700}


def test_after_a_buy_back_the_lender_keeps_recoveries_and_funders_get_nothing_twice() -> None:
    bought_back = replace(TERMS, lender_buys_back_charge_offs=True)
    book = replace(
        BOOK, products={("GUAR1", 1): ProductParties(bought_back, InterestMethod.DAILY_PPM, 500)}
    )
    recovery = _movement(
        CollectionsEventKind.RECOVERY, 1_000, product_code="GUAR1", product_version=1
    )
    assert _nets(allocate_movement(recovery, book)) == {}
    # The charge-off itself: the lender bought bank-a's 5,000 back (CHARGE_OFF); without
    # the buy-back the same event moves nothing, the funder bearing its own loss.
    charge_off = _movement(
        LedgerEventKind.FUNDING_SHARE, -5_000, partner_ref="bank-a", product_code="GUAR1",
        product_version=1, batch_kind=eod_batch_kind(EodStep.CHARGE_OFF),
    )  # fmt: skip
    assert _nets(allocate_movement(charge_off, book)) == {BANK_A: 5_000, LENDER: -5_000}
    assert _nets(allocate_movement(charge_off, BOOK)) == {}


def test_the_guarantor_pays_the_lender_and_is_paid_back_first() -> None:
    paid = _movement(CollectionsEventKind.GUARANTOR_COMPENSATION, 52_000, partner_ref="guard")
    assert allocate_movement(paid, BOOK) == [
        AllocationLine(GUARD, EntryKind.GUARANTEE_PAYMENT, -52_000),
        AllocationLine(LENDER, EntryKind.GUARANTEE_PAYMENT, 52_000),
    ]
    back = _movement(CollectionsEventKind.RECOVERY_TO_GUARANTOR, 30_000, partner_ref="guard")
    assert allocate_movement(back, BOOK) == [
        AllocationLine(LENDER, EntryKind.RECOVERY, -30_000),
        AllocationLine(GUARD, EntryKind.RECOVERY, 30_000),
    ]


def test_a_debt_sale_price_goes_from_the_agency_through_the_lender_to_the_funders() -> None:
    sale = _movement(
        CollectionsEventKind.DEBT_SALE_PROCEEDS, 60_000, partner_ref="agency-a",
        product_code="GUAR1", product_version=1,
    )  # fmt: skip
    # The agency pays 60,000; bank-a gets 50 % (30,000), bank-b 20 % (12,000); the lender
    # keeps 30 % (18,000).
    lines = allocate_movement(sale, BOOK)
    assert {line.kind for line in lines} == {EntryKind.DEBT_SALE}
    assert _nets(lines) == {AGENCY: -60_000, BANK_A: 30_000, BANK_B: 12_000, LENDER: 18_000}


def test_a_price_is_split_over_lines_by_face_value() -> None:
    # 60,001 over faces 300,000 and 100,000: exact 45,000.75 and 15,000.25; the fen left
    # goes to the first line's .75.
    assert split_by_face(60_001, [(42, 300_000), (43, 100_000)]) == {42: 45_001, 43: 15_000}
    # Equal faces, 3 fen over 2 lines: 1.5 each, the first listed gets the fen left.
    assert split_by_face(3, [(5, 10), (9, 10)]) == {5: 2, 9: 1}


def test_a_line_s_recovery_is_split_over_its_products_by_principal_written_off() -> None:
    weights = [(("CASH1", 1), 30_000), (("REV1", 1), 70_000)]
    # 1,001: floor 300.3 -> 300 and 700.7 -> 700, the 1 fen left to the heavier product.
    assert split_over_products(1_001, weights) == [(("CASH1", 1), 300), (("REV1", 1), 701)]
    # Nothing written off: equal weights, the first product takes the remainder.
    assert split_over_products(3, [(("A", 1), 0), (("B", 1), 0)]) == [(("A", 1), 2), (("B", 1), 1)]
