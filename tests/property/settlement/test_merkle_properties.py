"""Trees over arbitrary leaves: every proof verifies, any single-bit change breaks it."""

from __future__ import annotations

from eth_abi.abi import encode as abi_encode
from hypothesis import given
from hypothesis import strategies as st

from node_api.kernel.chain import EntryKind
from settlement.entries import LEAF_ABI_TYPES, SettlementEntry
from settlement.merkle import MerkleTree, build_tree, verify

LEAF_SETS = st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=80)

ENTRIES = st.builds(
    SettlementEntry,
    cycle_id=st.integers(0, 2**64 - 1),
    entry_id=st.integers(0, 2**64 - 1),
    partner_id=st.integers(0, 2**32 - 1),
    kind=st.sampled_from(EntryKind),
    amount_fen=st.integers(-(2**255), 2**255 - 1),
    salt=st.binary(min_size=32, max_size=32),
)


def flip_bit(data: bytes, bit: int) -> bytes:
    index, offset = divmod(bit % (8 * len(data)), 8)
    return data[:index] + bytes([data[index] ^ (1 << offset)]) + data[index + 1 :]


@given(LEAF_SETS)
def test_every_proof_of_any_tree_verifies_and_packs_consistently(leaves: list[bytes]) -> None:
    tree = build_tree(leaves)

    proofs = [tree.proof(index) for index in range(len(leaves))]

    assert all(verify(tree.root, leaf, proof) for leaf, proof in zip(leaves, proofs, strict=True))
    assert tree.all_proofs_packed() == [b"".join(proof) for proof in proofs]
    assert tree.is_consistent()


@given(LEAF_SETS, st.integers(min_value=0), st.integers(min_value=0))
def test_flipping_any_bit_of_a_leaf_or_proof_breaks_verification(
    leaves: list[bytes], pick: int, bit: int
) -> None:
    tree = build_tree(leaves)
    index = pick % len(leaves)
    proof = tree.proof(index)

    assert not verify(tree.root, flip_bit(leaves[index], bit), proof)
    if proof:
        position = bit % len(proof)
        proof[position] = flip_bit(proof[position], bit // len(proof))
        assert not verify(tree.root, leaves[index], proof)


@given(LEAF_SETS)
def test_serialised_tree_round_trips_and_serves_proofs_by_leaf(leaves: list[bytes]) -> None:
    tree = build_tree(leaves)

    restored = MerkleTree.from_bytes(tree.to_bytes())

    assert restored == tree
    for leaf in leaves:
        assert verify(tree.root, leaf, restored.proof_for_leaf(leaf))


@given(ENTRIES)
def test_fast_leaf_encoding_equals_eth_abi_for_any_entry(entry: SettlementEntry) -> None:
    assert entry.encode_leaf() == abi_encode(list(LEAF_ABI_TYPES), list(entry.leaf_values()))
