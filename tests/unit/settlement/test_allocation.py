"""Worked examples of allocation, checked to the fen by hand (see each comment)."""

from __future__ import annotations

import pytest

from node_api.kernel.chain import EntryKind
from node_api.kernel.errors import CreditNetValueError
from settlement.allocation import (
    AllocationLine,
    ChannelTerms,
    EventKind,
    FunderShare,
    GuaranteeTerms,
    MoneyEvent,
    PartyTerms,
    allocate,
    allocate_to_entries,
    compute_funder_interest_fen,
    split_by_share,
    split_cumulative,
)
from settlement.salts import LeafSalts

LENDER, BANK_A, BANK_B, GUARANTOR, CHANNEL = 1, 2, 3, 8, 9

TERMS = PartyTerms(
    lender_id=LENDER,
    funders=(FunderShare(BANK_A, 700_000, 800), FunderShare(BANK_B, 200_000, 600)),
    channel=ChannelTerms(CHANNEL, commission_bps=150, merchant_discount_bps=60),
    guarantee=GuaranteeTerms(GUARANTOR, 800_000),
)


def lines(*triples: tuple[int, EntryKind, int]) -> tuple[AllocationLine, ...]:
    return tuple(AllocationLine(*triple) for triple in triples)


def test_split_rounds_down_per_funder_and_gives_the_remainder_to_the_lender() -> None:
    # 10,001 * 0.7 = 7,000.7 -> 7,000; * 0.2 = 2,000.2 -> 2,000; lender 10,001 - 9,000.
    assert split_by_share(10_001, TERMS) == {BANK_A: 7_000, BANK_B: 2_000, LENDER: 1_001}


def test_lender_gets_the_rounding_remainder_even_without_an_own_share() -> None:
    terms = PartyTerms(LENDER, (FunderShare(BANK_A, 500_000, 0), FunderShare(BANK_B, 500_000, 0)))

    assert split_by_share(3, terms) == {BANK_A: 1, BANK_B: 1, LENDER: 1}


def test_funded_purchase_funders_pay_their_share_and_the_lender_receives_it() -> None:
    event = MoneyEvent(EventKind.PURCHASE_FUNDED, 10_001)

    assert allocate(event, TERMS) == lines(
        (BANK_A, EntryKind.PRINCIPAL_FUNDED, -7_000),
        (BANK_B, EntryKind.PRINCIPAL_FUNDED, -2_000),
        (LENDER, EntryKind.PRINCIPAL_FUNDED, 9_000),
    )


def test_repayments_return_exactly_the_funded_principal_over_the_loan() -> None:
    # Plain per-event floors would give bank A 2,333 * 3 = 6,999 of the 7,000 it funded.
    repayments = [(3_334, 0), (3_334, 3_334), (3_333, 6_668)]

    splits = [split_cumulative(amount, before, TERMS) for amount, before in repayments]

    assert [split[BANK_A] for split in splits] == [2_333, 2_334, 2_333]
    assert sum(split[BANK_B] for split in splits) == 2_000
    assert [sum(split.values()) for split in splits] == [3_334, 3_334, 3_333]


def test_principal_repaid_lender_pays_each_funder_its_cumulative_share() -> None:
    event = MoneyEvent(EventKind.PRINCIPAL_REPAID, 3_334, principal_reduced_before_fen=3_334)

    # A: floor(6,668 * 0.7) - floor(3,334 * 0.7) = 4,667 - 2,333; B: 1,333 - 666.
    assert allocate(event, TERMS) == lines(
        (BANK_A, EntryKind.PRINCIPAL_REPAID, 2_334),
        (BANK_B, EntryKind.PRINCIPAL_REPAID, 667),
        (LENDER, EntryKind.PRINCIPAL_REPAID, -3_001),
    )


def test_funder_interest_is_its_rate_on_its_principal_share_half_even() -> None:
    # 700,000 * 800 bps * 30 / (10,000 * 365) = 4,602.74 -> 4,603.
    assert compute_funder_interest_fen(1_000_000, 700_000, 800, 30, 365) == 4_603
    # 200,000 * 600 * 30 / 3,650,000 = 986.30 -> 986.
    assert compute_funder_interest_fen(1_000_000, 200_000, 600, 30, 365) == 986


@pytest.mark.parametrize(("principal_fen", "expected_fen"), [(10_000, 0), (30_000, 2)])
def test_funder_interest_rounds_ties_to_even(principal_fen: int, expected_fen: int) -> None:
    # principal * 1 bps * 1 day / (10,000 * 2) is exactly 0.5 and 1.5.
    assert compute_funder_interest_fen(principal_fen, 1_000_000, 1, 1, 2) == expected_fen


def test_interest_funder_keeps_its_earned_rate_and_pays_the_rest_as_service_fee() -> None:
    event = MoneyEvent(
        EventKind.INTEREST_COLLECTED, 15_000, principal_fen=1_000_000, accrual_days=30
    )

    # Collected shares 10,500 and 3,000; earned 4,603 and 986; fees 5,897 and 2,014.
    assert allocate(event, TERMS) == lines(
        (BANK_A, EntryKind.INTEREST_SHARE, 10_500),
        (BANK_B, EntryKind.INTEREST_SHARE, 3_000),
        (LENDER, EntryKind.INTEREST_SHARE, -13_500),
        (BANK_A, EntryKind.SERVICE_FEE, -5_897),
        (BANK_B, EntryKind.SERVICE_FEE, -2_014),
        (LENDER, EntryKind.SERVICE_FEE, 7_911),
    )


def test_interest_funder_share_is_capped_by_the_interest_collected_on_its_share() -> None:
    event = MoneyEvent(
        EventKind.INTEREST_COLLECTED, 1_000, principal_fen=1_000_000, accrual_days=30
    )

    # Bank A collected 700 < 4,603 earned: keeps all 700. Bank B collected 200 < 986.
    assert allocate(event, TERMS) == lines(
        (BANK_A, EntryKind.INTEREST_SHARE, 700),
        (BANK_B, EntryKind.INTEREST_SHARE, 200),
        (LENDER, EntryKind.INTEREST_SHARE, -900),
    )


def test_fees_are_shared_by_funding_share() -> None:
    event = MoneyEvent(EventKind.FEE_COLLECTED, 999)

    assert allocate(event, TERMS) == lines(
        (BANK_A, EntryKind.FEE_SHARE, 699),
        (BANK_B, EntryKind.FEE_SHARE, 199),
        (LENDER, EntryKind.FEE_SHARE, -898),
    )


def test_channel_commission_and_merchant_discount_round_down() -> None:
    event = MoneyEvent(EventKind.CHANNEL_COMMISSION, 10_001)

    # 10,001 * 1.5 % = 150.015 -> 150; * 0.6 % = 60.006 -> 60.
    assert allocate(event, TERMS) == lines(
        (LENDER, EntryKind.CHANNEL_COMMISSION, -150),
        (CHANNEL, EntryKind.CHANNEL_COMMISSION, 150),
        (CHANNEL, EntryKind.MERCHANT_DISCOUNT, -60),
        (LENDER, EntryKind.MERCHANT_DISCOUNT, 60),
    )


def test_refund_returns_principal_to_funders_and_claws_back_commission() -> None:
    event = MoneyEvent(EventKind.REFUND, 5_000)

    assert allocate(event, TERMS) == lines(
        (BANK_A, EntryKind.REFUND, 3_500),
        (BANK_B, EntryKind.REFUND, 1_000),
        (LENDER, EntryKind.REFUND, -4_500),
        (CHANNEL, EntryKind.CHANNEL_COMMISSION, -75),
        (LENDER, EntryKind.CHANNEL_COMMISSION, 75),
        (LENDER, EntryKind.MERCHANT_DISCOUNT, -30),
        (CHANNEL, EntryKind.MERCHANT_DISCOUNT, 30),
    )


def test_charge_off_lender_buys_back_the_funders_shares() -> None:
    event = MoneyEvent(EventKind.CHARGE_OFF, 10_001)

    assert allocate(event, TERMS) == lines(
        (BANK_A, EntryKind.CHARGE_OFF, 7_000),
        (BANK_B, EntryKind.CHARGE_OFF, 2_000),
        (LENDER, EntryKind.CHARGE_OFF, -9_000),
    )


def test_charge_off_without_buyback_moves_nothing() -> None:
    terms = PartyTerms(LENDER, TERMS.funders, lender_buys_back_charge_offs=False)

    assert allocate(MoneyEvent(EventKind.CHARGE_OFF, 10_001), terms) == ()


def test_guarantor_pays_its_share_split_among_funders_and_lender() -> None:
    event = MoneyEvent(EventKind.GUARANTOR_PAYMENT, 10_001)

    # 10,001 * 0.8 = 8,000.8 -> 8,000; split 5,600 / 1,600 / remainder 800 to the lender.
    assert allocate(event, TERMS) == lines(
        (GUARANTOR, EntryKind.GUARANTEE_PAYMENT, -8_000),
        (BANK_A, EntryKind.GUARANTEE_PAYMENT, 5_600),
        (BANK_B, EntryKind.GUARANTEE_PAYMENT, 1_600),
        (LENDER, EntryKind.GUARANTEE_PAYMENT, 800),
    )


def test_tiny_amounts_produce_no_zero_lines() -> None:
    event = MoneyEvent(EventKind.FEE_COLLECTED, 1)

    # 1 * 0.7 and 1 * 0.2 both round down to 0: the lender keeps the fen, nothing moves.
    assert allocate(event, TERMS) == ()


def test_allocate_to_entries_numbers_salts_lines_and_keeps_the_source_ref() -> None:
    event = MoneyEvent(EventKind.PURCHASE_FUNDED, 10_001, source_ref="purchase-42")

    salts = LeafSalts(b"test-allocation-leaf-salt-secret")
    entries = allocate_to_entries(event, TERMS, cycle_id=7, first_entry_id=100, salts=salts)

    assert [entry.entry_id for entry in entries] == [100, 101, 102]
    assert [entry.salt for entry in entries] == [
        salts.salt(7, entry.entry_id, entry.partner_id) for entry in entries
    ]
    assert {entry.cycle_id for entry in entries} == {7}
    assert {entry.source_ref for entry in entries} == {"purchase-42"}
    assert sum(entry.amount_fen for entry in entries) == 0


def test_RevertWhen_channel_event_has_no_channel_partner() -> None:
    terms = PartyTerms(LENDER, TERMS.funders)

    with pytest.raises(CreditNetValueError):
        allocate(MoneyEvent(EventKind.CHANNEL_COMMISSION, 100), terms)


def test_RevertWhen_guarantor_payment_has_no_guarantor() -> None:
    terms = PartyTerms(LENDER, TERMS.funders)

    with pytest.raises(CreditNetValueError):
        allocate(MoneyEvent(EventKind.GUARANTOR_PAYMENT, 100), terms)


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (
            lambda: PartyTerms(1, (FunderShare(2, 600_000, 0), FunderShare(3, 400_001, 0))),
            "funders",
        ),
        (lambda: PartyTerms(1, (FunderShare(2, 0, 0),)), "funders"),
        (lambda: PartyTerms(1, (FunderShare(2, 10, -1),)), "funders"),
        (lambda: PartyTerms(1, (FunderShare(1, 10, 0),)), "partner_id"),
        (lambda: PartyTerms(1, (FunderShare(2, 10, 0), FunderShare(2, 10, 0))), "partner_id"),
        (lambda: PartyTerms(1, channel=ChannelTerms(9, 10_001)), "channel"),
        (lambda: PartyTerms(1, guarantee=GuaranteeTerms(8, 0)), "guarantee"),
        (lambda: PartyTerms(2**32), "partner_id"),
        (lambda: PartyTerms(1, year_basis_days=0), "year_basis_days"),
        (lambda: MoneyEvent(EventKind.FEE_COLLECTED, -1), "amount_fen"),
        (lambda: MoneyEvent(EventKind.INTEREST_COLLECTED, 1, accrual_days=-1), "accrual_days"),
    ],
)
def test_RevertWhen_terms_or_event_are_invalid(build: object, field: str) -> None:
    with pytest.raises(CreditNetValueError) as raised:
        build()  # type: ignore[operator]

    assert raised.value.field == field
