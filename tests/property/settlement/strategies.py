"""Hypothesis strategies for settlement: products' party terms and ledger events."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import strategies as st

from node_api.kernel.money import PPM_DENOMINATOR
from settlement.allocation import (
    ChannelTerms,
    EventKind,
    FunderShare,
    GuaranteeTerms,
    MoneyEvent,
    PartyTerms,
)

AMOUNTS_FEN = st.integers(min_value=0, max_value=10**12)


@st.composite
def funder_shares_ppm(draw: st.DrawFn, funder_count: int) -> list[int]:
    """`funder_count` positive shares summing to at most 1e6 ppm, often exactly 1e6."""
    if funder_count == 0:
        return []
    total_ppm = draw(
        st.one_of(st.just(PPM_DENOMINATOR), st.integers(funder_count, PPM_DENOMINATOR))
    )
    if funder_count == 1:
        return [total_ppm]
    cuts = draw(
        st.lists(
            st.integers(1, total_ppm - 1),
            min_size=funder_count - 1,
            max_size=funder_count - 1,
            unique=True,
        )
    )
    points = [0, *sorted(cuts), total_ppm]
    return [high - low for low, high in pairwise(points)]


@st.composite
def party_terms(draw: st.DrawFn) -> PartyTerms:
    """Terms with 0–4 funders, an optional channel and guarantor, distinct partner ids."""
    funder_count = draw(st.integers(0, 4))
    ids = draw(
        st.lists(
            st.integers(0, 2**32 - 1),
            min_size=funder_count + 3,
            max_size=funder_count + 3,
            unique=True,
        )
    )
    shares = draw(funder_shares_ppm(funder_count))
    rates = draw(st.lists(st.integers(0, 3_600), min_size=funder_count, max_size=funder_count))
    funders = tuple(
        FunderShare(partner_id, share_ppm, rate_bps)
        for partner_id, share_ppm, rate_bps in zip(ids[3:], shares, rates, strict=True)
    )
    channel = None
    if draw(st.booleans()):
        channel = ChannelTerms(ids[1], draw(st.integers(0, 10_000)), draw(st.integers(0, 10_000)))
    guarantee = None
    if draw(st.booleans()):
        guarantee = GuaranteeTerms(ids[2], draw(st.integers(1, PPM_DENOMINATOR)))
    return PartyTerms(
        lender_id=ids[0],
        funders=funders,
        channel=channel,
        guarantee=guarantee,
        year_basis_days=draw(st.sampled_from((360, 365))),
        lender_buys_back_charge_offs=draw(st.booleans()),
    )


def allowed_kinds(terms: PartyTerms) -> list[EventKind]:
    """The events a product can have: channel and guarantor events need those parties."""
    kinds = list(EventKind)
    if terms.channel is None:
        kinds.remove(EventKind.CHANNEL_COMMISSION)
    if terms.guarantee is None:
        kinds.remove(EventKind.GUARANTOR_PAYMENT)
    return kinds


@st.composite
def money_event(draw: st.DrawFn, terms: PartyTerms, source_ref: str = "") -> MoneyEvent:
    """Any event the product allows, with amounts up to 10 billion yuan."""
    return MoneyEvent(
        kind=draw(st.sampled_from(allowed_kinds(terms))),
        amount_fen=draw(AMOUNTS_FEN),
        source_ref=source_ref,
        principal_fen=draw(AMOUNTS_FEN),
        accrual_days=draw(st.integers(0, 400)),
        principal_reduced_before_fen=draw(AMOUNTS_FEN),
    )


@st.composite
def terms_and_event(draw: st.DrawFn) -> tuple[PartyTerms, MoneyEvent]:
    terms = draw(party_terms())
    return terms, draw(money_event(terms))
