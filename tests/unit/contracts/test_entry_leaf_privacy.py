"""A partner's proofs reveal nothing about the other partners' entries.

Partner A receives its own settlement entries with their Merkle proofs. Every sibling hash
in those proofs is the leaf (or a node above the leaves) of entries A must not learn. An
entry has few unknowns: its id lies in the cycle's range, its partner is one of the
cycle's, its kind one of a few codes and its amount usually a round sum, so without a
salt A recovers a sibling leaf by trying values. With the private 32-byte salt every
entry now carries, the same search finds nothing.

The search is bounded but real: every entry id of the cycle x every listed partner x kinds
1..10 x every whole-yuan amount in -100,000..100,000 fen (720,360 candidates, each
checked against every sibling hash), in pure Python. The cycle's amounts are whole yuan,
so the same search over the unsalted leaves (the encoding before salts) recovers other
partners' entries: the control that shows the test can fail.
"""

from __future__ import annotations

import random
import secrets

import pytest
import sha3  # type: ignore[import-untyped]
from eth_abi.abi import encode as abi_encode

from tests.unit.contracts.clearing import payout_of, propose
from tests.unit.contracts.helpers import (
    CHANNEL,
    FUNDER,
    LENDER,
    Entry,
    MerkleTree,
    Network,
    cycle_from_entries,
    send,
    unsalted_entry_leaf,
)

pytestmark = pytest.mark.chain

CYCLE_ID = 20_261_128
PARTNER_A = 1
PARTNERS = {1: LENDER, 2: FUNDER, 3: CHANNEL}
ENTRIES_PER_PARTNER = 4
KINDS = range(1, 11)
AMOUNT_STEP_FEN = 100  # whole yuan
AMOUNTS_FEN = range(-100_000, 100_001, AMOUNT_STEP_FEN)
MIN_CANDIDATES = 200_000


def random_entries(rng: random.Random) -> list[Entry]:
    """Four entries per partner, whole-yuan amounts within the searched range, summing to
    zero over the cycle, each with a fresh random 32-byte salt."""
    while True:
        amounts = [
            rng.randrange(-1_000, 1_001) * AMOUNT_STEP_FEN
            for _ in range(len(PARTNERS) * ENTRIES_PER_PARTNER - 1)
        ]
        last = -sum(amounts)
        if abs(last) <= AMOUNTS_FEN.stop - 1:
            amounts.append(last)
            break
    entries: list[Entry] = []
    for index, amount_fen in enumerate(amounts):
        partner_id = 1 + index // ENTRIES_PER_PARTNER
        kind = rng.choice(KINDS)
        entries.append((index + 1, partner_id, kind, amount_fen, secrets.token_bytes(32)))
    return entries


def siblings_of(tree: MerkleTree, leaves: list[bytes]) -> set[bytes]:
    """Every hash in the proofs of `leaves`, minus the leaves themselves."""
    return {node for leaf in leaves for node in tree.proof(leaf)} - set(leaves)


def brute_force(targets: set[bytes], cycle_id: int, entry_ids: range) -> tuple[set[bytes], int]:
    """Try every (entry id, partner, kind, whole-yuan amount) as an unsalted leaf and as a
    leaf salted with zero; the targets found and the number of candidates tried."""

    def word(value: int) -> bytes:
        return value.to_bytes(32, "big", signed=True)

    amount_words = [word(amount) for amount in AMOUNTS_FEN]
    zero_salt = bytes(32)
    found: set[bytes] = set()
    tried = 0
    for entry_id in entry_ids:
        for partner_id in PARTNERS:
            for kind in KINDS:
                prefix = sha3.keccak_256(
                    word(cycle_id) + word(entry_id) + word(partner_id) + word(kind)
                )
                for amount_word in amount_words:
                    inner = prefix.copy()
                    inner.update(amount_word)
                    unsalted = sha3.keccak_256(inner.digest()).digest()
                    inner.update(zero_salt)
                    zero_salted = sha3.keccak_256(inner.digest()).digest()
                    if unsalted in targets:
                        found.add(unsalted)
                    if zero_salted in targets:
                        found.add(zero_salted)
                    tried += 1
    return found, tried


def test_brute_forcing_proof_siblings_finds_nothing_but_would_without_salts(
    net: Network,
) -> None:
    entries = random_entries(random.Random(CYCLE_ID))
    positions = {partner_id: 0 for partner_id in PARTNERS}
    for _, partner_id, _, amount_fen, _ in entries:
        positions[partner_id] += amount_fen
    cycle = cycle_from_entries(CYCLE_ID, entries, positions)
    mine = [index for index, entry in enumerate(entries) if entry[1] == PARTNER_A]

    # The chain computes the same salted leaves, accepts the cycle, and A's proofs verify.
    house = net.clearing_house.functions
    for index, entry in enumerate(entries):
        assert bytes(house.computeEntryLeaf(CYCLE_ID, *entry).call()) == cycle.leaf(index)
    for partner_id, role in PARTNERS.items():
        payout = payout_of(net, partner_id)
        send(net, net.relayer, net.clearing_house, "registerPartner", partner_id, role, payout)
    propose(net, cycle)
    for index in mine:
        assert house.verifyEntry(CYCLE_ID, *entries[index], cycle.proof(index)).call()

    # What A sees: the sibling hashes of its proofs, salted (now) and unsalted (before).
    salted_siblings = siblings_of(cycle.tree, [cycle.leaf(index) for index in mine])
    unsalted_leaves = [unsalted_entry_leaf(CYCLE_ID, *entry[:4]) for entry in entries]
    unsalted_tree = MerkleTree(unsalted_leaves)
    unsalted_siblings = siblings_of(unsalted_tree, [unsalted_leaves[index] for index in mine])
    others_unsalted = {leaf for i, leaf in enumerate(unsalted_leaves) if i not in mine}
    exposed = unsalted_siblings & others_unsalted
    assert exposed, "the unsalted proofs should contain another partner's leaf"

    found, tried = brute_force(
        salted_siblings | unsalted_siblings, CYCLE_ID, range(1, len(entries) + 1)
    )
    assert tried >= MIN_CANDIDATES

    # Control: without salts, every other partner's leaf among the siblings is recovered.
    assert found & unsalted_siblings == exposed
    # With salts, nothing is.
    assert not found & salted_siblings


def test_the_search_recovers_a_leaf_it_covers() -> None:
    """The search itself is sound: a leaf inside its range is found, unsalted or with a
    zero salt."""
    unsalted = unsalted_entry_leaf(CYCLE_ID, 3, 2, 7, -42_300)
    encoded = abi_encode(
        ["uint64", "uint64", "uint32", "uint8", "int256", "bytes32"],
        [CYCLE_ID, 5, 3, 10, 99_900, bytes(32)],
    )
    zero_salted = sha3.keccak_256(sha3.keccak_256(encoded).digest()).digest()
    found, _ = brute_force({unsalted, zero_salted}, CYCLE_ID, range(1, 6))
    assert found == {unsalted, zero_salted}
