"""Cycle close: sorted entries, aligned net positions, Σ = 0 enforced, provable entries."""

from __future__ import annotations

import pytest

from node_api.kernel.chain import EntryKind
from node_api.kernel.errors import ConflictError, CreditNetError, CreditNetValueError
from settlement.entries import SettlementEntry, compute_leaf_hashes
from settlement.merkle import build_tree, verify
from settlement.netting import CycleNotBalancedError, close_cycle, net_positions
from settlement.salts import LeafSalts

CYCLE = 12
SALTS = LeafSalts(b"test-netting-leaf-salt-secret")


def entry(
    entry_id: int, partner_id: int, amount_fen: int, cycle_id: int = CYCLE
) -> SettlementEntry:
    salt = SALTS.salt(cycle_id, entry_id, partner_id)
    return SettlementEntry(
        cycle_id, entry_id, partner_id, EntryKind.PRINCIPAL_FUNDED, amount_fen, salt
    )


BALANCED = [
    entry(5, 3, -2_000),
    entry(2, 2, -7_000),
    entry(9, 1, 9_000),
    entry(7, 2, 2_500),
    entry(8, 1, -2_500),
]


def test_net_positions_sum_each_partners_entries() -> None:
    assert net_positions(BALANCED) == {3: -2_000, 2: -4_500, 1: 6_500}


def test_close_sorts_entries_by_id_and_aligns_ascending_partners_with_positions() -> None:
    close = close_cycle(CYCLE, BALANCED)

    assert [e.entry_id for e in close.entries] == [2, 5, 7, 8, 9]
    assert close.partner_ids == (1, 2, 3)
    assert close.net_positions_fen == (6_500, -4_500, -2_000)
    assert close.entry_count == 5
    assert sum(close.net_positions_fen) == 0


def test_close_root_is_the_tree_over_the_sorted_entries() -> None:
    close = close_cycle(CYCLE, BALANCED)

    expected = build_tree(compute_leaf_hashes(sorted(BALANCED, key=lambda e: e.entry_id)))
    assert close.root == expected.root


def test_every_entry_proves_against_the_cycle_root_by_id() -> None:
    close = close_cycle(CYCLE, BALANCED)

    for item in BALANCED:
        assert verify(close.root, item.leaf_hash(), close.proof_for_entry(item.entry_id))


def test_a_tampered_amount_does_not_prove_against_the_root() -> None:
    close = close_cycle(CYCLE, BALANCED)
    tampered = entry(7, 2, 2_501)

    assert not verify(close.root, tampered.leaf_hash(), close.proof_for_entry(7))


def test_a_proofs_siblings_do_not_give_away_another_partners_small_amount() -> None:
    close = close_cycle(CYCLE, [entry(1, 2, -2_500), entry(2, 3, 2_500)])
    sibling = close.proof_for_entry(1)[0]
    assert sibling == close.entries[1].leaf_hash()
    guesses = {
        SettlementEntry(CYCLE, 2, 3, EntryKind.PRINCIPAL_FUNDED, amount_fen, salt).leaf_hash()
        for amount_fen in range(-5_000, 5_001)
        for salt in (bytes(32), SALTS.salt(CYCLE, 2, 2))  # no salt, or the prover's own
    }

    assert sibling not in guesses
    assert entry(2, 3, 2_500).leaf_hash() == sibling  # only the right salt finds it


def test_partner_with_a_zero_position_stays_listed() -> None:
    close = close_cycle(CYCLE, [entry(1, 4, 10), entry(2, 4, -10)])

    assert close.partner_ids == (4,)
    assert close.net_position_of(4) == 0
    assert close.net_position_of(99) == 0


def test_RevertWhen_net_positions_do_not_sum_to_zero() -> None:
    with pytest.raises(CycleNotBalancedError) as raised:
        close_cycle(CYCLE, [*BALANCED, entry(10, 3, 1)])

    assert raised.value.sum_fen == 1
    assert isinstance(raised.value, ConflictError)
    assert isinstance(raised.value, CreditNetError)
    assert raised.value.extra["sum_fen"] == 1


def test_RevertWhen_an_entry_belongs_to_another_cycle() -> None:
    with pytest.raises(CreditNetValueError):
        close_cycle(CYCLE, [*BALANCED, entry(11, 1, 0, cycle_id=CYCLE + 1)])


def test_RevertWhen_two_entries_share_an_id() -> None:
    with pytest.raises(CreditNetValueError):
        close_cycle(CYCLE, [*BALANCED, entry(9, 1, 0)])


def test_RevertWhen_the_cycle_is_empty() -> None:
    with pytest.raises(CreditNetValueError):
        close_cycle(CYCLE, [])


def test_RevertWhen_a_proof_is_requested_for_an_unknown_entry() -> None:
    close = close_cycle(CYCLE, BALANCED)

    with pytest.raises(CreditNetValueError):
        close.proof_for_entry(6)
