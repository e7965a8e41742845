"""Conservation: every fen of every movement lands in exactly one entry; cycles net to zero.

Expected amounts are recomputed here with exact fractions (`Fraction`, `math.floor`,
`round`, which rounds half to even), independently of the integer helpers the code uses.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from node_api.kernel.chain import EntryKind
from node_api.kernel.money import PPM_DENOMINATOR
from settlement.allocation import (
    EventKind,
    MoneyEvent,
    PartyTerms,
    allocate,
    allocate_to_entries,
    split_by_share,
    split_cumulative,
)
from settlement.entries import SettlementEntry
from settlement.netting import close_cycle
from settlement.salts import LeafSalts
from tests.property.settlement.strategies import (
    AMOUNTS_FEN,
    money_event,
    party_terms,
    terms_and_event,
)


def parties_of(terms: PartyTerms) -> set[int]:
    ids = {terms.lender_id, *(funder.partner_id for funder in terms.funders)}
    for role in (terms.channel, terms.guarantee):
        if role is not None:
            ids.add(role.partner_id)
    return ids


@given(terms_and_event())
def test_every_event_balances_in_total_and_per_entry_kind(
    case: tuple[PartyTerms, MoneyEvent],
) -> None:
    terms, event = case

    lines = allocate(event, terms)

    assert sum(line.amount_fen for line in lines) == 0
    per_kind: Counter[EntryKind] = Counter()
    for line in lines:
        per_kind[line.kind] += line.amount_fen
    assert set(per_kind.values()) <= {0}
    assert all(line.amount_fen != 0 for line in lines)
    assert {line.partner_id for line in lines} <= parties_of(terms)
    assert len({(line.partner_id, line.kind) for line in lines}) == len(lines)


@given(party_terms(), AMOUNTS_FEN)
def test_split_puts_every_fen_in_one_part_rounding_down_with_remainder_to_lender(
    terms: PartyTerms, amount_fen: int
) -> None:
    parts = split_by_share(amount_fen, terms)

    assert sum(parts.values()) == amount_fen
    for funder in terms.funders:
        assert parts[funder.partner_id] == math.floor(
            Fraction(amount_fen * funder.share_ppm, PPM_DENOMINATOR)
        )
    lender_exact = Fraction(amount_fen * terms.lender_share_ppm, PPM_DENOMINATOR)
    remainder = parts[terms.lender_id] - lender_exact
    assert 0 <= remainder < max(1, len(terms.funders))


@given(party_terms(), st.lists(st.integers(1, 10**9), min_size=1, max_size=12))
def test_funders_get_back_exactly_the_principal_they_funded_over_a_loans_life(
    terms: PartyTerms, reductions_fen: list[int]
) -> None:
    principal_fen = sum(reductions_fen)
    funded = split_by_share(principal_fen, terms)
    returned: Counter[int] = Counter()
    before_fen = 0
    for amount_fen in reductions_fen:
        for partner_id, part in split_cumulative(amount_fen, before_fen, terms).items():
            returned[partner_id] += part
        before_fen += amount_fen
        lender_kept = before_fen - sum(returned[f.partner_id] for f in terms.funders)
        assert lender_kept >= math.floor(
            Fraction(before_fen * terms.lender_share_ppm, PPM_DENOMINATOR)
        )

    for funder in terms.funders:
        assert returned[funder.partner_id] == funded[funder.partner_id]


@given(party_terms(), st.lists(st.integers(1, 10**9), min_size=1, max_size=8), st.data())
def test_principal_events_over_a_loan_return_to_each_funder_what_it_paid_in(
    terms: PartyTerms, reductions_fen: list[int], data: st.DataObject
) -> None:
    returning = [EventKind.PRINCIPAL_REPAID, EventKind.REFUND]
    if terms.lender_buys_back_charge_offs:
        returning.append(EventKind.CHARGE_OFF)
    events = [MoneyEvent(EventKind.PURCHASE_FUNDED, sum(reductions_fen))]
    before_fen = 0
    for amount_fen in reductions_fen:
        kind = data.draw(st.sampled_from(returning))
        events.append(MoneyEvent(kind, amount_fen, principal_reduced_before_fen=before_fen))
        before_fen += amount_fen
    principal_kinds = {
        EntryKind.PRINCIPAL_FUNDED,
        EntryKind.PRINCIPAL_REPAID,
        EntryKind.REFUND,
        EntryKind.CHARGE_OFF,
    }

    net: Counter[int] = Counter()
    for event in events:
        for line in allocate(event, terms):
            if line.kind in principal_kinds:
                net[line.partner_id] += line.amount_fen

    assert all(net[partner_id] == 0 for partner_id in parties_of(terms))


@given(terms_and_event())
def test_interest_funder_nets_its_earned_rate_capped_by_its_collected_share(
    case: tuple[PartyTerms, MoneyEvent],
) -> None:
    terms, drawn = case
    event = MoneyEvent(
        EventKind.INTEREST_COLLECTED, drawn.amount_fen, "", drawn.principal_fen, drawn.accrual_days
    )

    net: Counter[int] = Counter()
    for line in allocate(event, terms):
        net[line.partner_id] += line.amount_fen

    for funder in terms.funders:
        collected = math.floor(Fraction(event.amount_fen * funder.share_ppm, PPM_DENOMINATOR))
        share_principal = math.floor(
            Fraction(event.principal_fen * funder.share_ppm, PPM_DENOMINATOR)
        )
        earned = round(
            Fraction(
                share_principal * funder.rate_bps * event.accrual_days,
                10_000 * terms.year_basis_days,
            )
        )
        assert net[funder.partner_id] == min(collected, earned)
    assert net[terms.lender_id] == -sum(net[f.partner_id] for f in terms.funders)


@given(terms_and_event())
def test_channel_and_guarantor_amounts_round_down_in_favour_of_the_payer(
    case: tuple[PartyTerms, MoneyEvent],
) -> None:
    terms, event = case
    lines = allocate(event, terms)
    paid: defaultdict[EntryKind, int] = defaultdict(int)
    for line in lines:
        if line.amount_fen > 0:
            paid[line.kind] += line.amount_fen

    amount = event.amount_fen
    if event.kind is EventKind.CHANNEL_COMMISSION and terms.channel is not None:
        rate = terms.channel.commission_bps
        assert paid[EntryKind.CHANNEL_COMMISSION] == math.floor(Fraction(amount * rate, 10_000))
    if event.kind is EventKind.GUARANTOR_PAYMENT and terms.guarantee is not None:
        share = terms.guarantee.share_ppm
        assert paid[EntryKind.GUARANTEE_PAYMENT] == math.floor(
            Fraction(amount * share, PPM_DENOMINATOR)
        )


@st.composite
def event_stream(draw: st.DrawFn) -> list[tuple[PartyTerms, MoneyEvent]]:
    """Events of up to four products sharing one lender, as in one cycle of the books."""
    products = draw(st.lists(party_terms(), min_size=1, max_size=4))
    count = draw(st.integers(1, 40))
    stream = []
    for number in range(count):
        terms = draw(st.sampled_from(products))
        stream.append((terms, draw(money_event(terms, source_ref=f"posting-{number}"))))
    return stream


SALTS = LeafSalts(b"property-test-leaf-salt-secret")


@given(event_stream())
def test_random_event_streams_close_with_net_positions_summing_to_zero(
    stream: list[tuple[PartyTerms, MoneyEvent]],
) -> None:
    entries: list[SettlementEntry] = []
    for terms, event in stream:
        lines = allocate(event, terms)
        batch = allocate_to_entries(
            event, terms, cycle_id=9, first_entry_id=len(entries) + 1, salts=SALTS
        )
        assert [(e.partner_id, e.kind, e.amount_fen) for e in batch] == [
            (line.partner_id, line.kind, line.amount_fen) for line in lines
        ]
        entries.extend(batch)

    by_event: Counter[str] = Counter()
    for item in entries:
        by_event[item.source_ref] += item.amount_fen
    assert set(by_event.values()) <= {0}
    assert [item.entry_id for item in entries] == list(range(1, len(entries) + 1))
    if entries:
        close = close_cycle(9, entries)
        assert sum(close.net_positions_fen) == 0
        assert close.entry_count == len(entries)
