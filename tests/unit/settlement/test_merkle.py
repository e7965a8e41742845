"""The tree must be bit-identical to OpenZeppelin's StandardMerkleTree and MerkleProof.

Three independent sources of truth: snapshots published in OpenZeppelin's own
merkle-tree test suite (src/standard.test.ts and its AVA snapshot), trees derived by hand
from the documented layout, and a recursive reference built with a different keccak
implementation (pycryptodome) in this file.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from Crypto.Hash import keccak as pycryptodome_keccak
from eth_abi.abi import encode as abi_encode

from node_api.kernel.errors import CreditNetValueError
from settlement.merkle import (
    MerkleTree,
    build_tree,
    hash_pair,
    pack_proof,
    process_proof,
    unpack_proof,
    verify,
)


def keccak(data: bytes) -> bytes:
    return pycryptodome_keccak.new(digest_bits=256, data=data).digest()


def reference_pair(a: bytes, b: bytes) -> bytes:
    return keccak(min(a, b) + max(a, b))


def standard_leaf(types: list[str], values: list[object]) -> bytes:
    return keccak(keccak(abi_encode(types, values)))


def h(hex_text: str) -> bytes:
    return bytes.fromhex(hex_text.removeprefix("0x"))


# OpenZeppelin merkle-tree src/standard.test.ts: StandardMerkleTree.of([['a'], ..., ['f']],
# ['string']) rendered as its tree array, with sortLeaves (the default) and without.
OZ_ABCDEF_SORTED = [
    "0x6deb52b5da8fd108f79fab00341f38d2587896634c646ee52e49f845680a70c8",
    "0x52426e0f1f65ff7e209a13b8c29cffe82e3acaf3dad0a9b9088f3b9a61a929c3",
    "0xfd3cf45654e88d1cc5d663578c82c76f4b5e3826bacaa1216441443504538f51",
    "0x8076923e76cf01a7c048400a2304c9a9c23bbbdac3a98ea3946340fdafbba34f",
    "0x965b92c6cf08303cc4feb7f3e0819c436c2cec17c6f0688a6af139c9a368707c",
    "0xeba909cf4bb90c6922771d7f126ad0fd11dfde93f3937a196274e1ac20fd2f5b",
    "0xc62a8cfa41edc0ef6f6ae27a2985b7d39c7fea770787d7e104696c6e81f64848",
    "0x9cf5a63718145ba968a01c1d557020181c5b252f665cf7386d370eddb176517b",
    "0x9c15a6a0eaeed500fd9eed4cbeab71f797cefcc67bfd46683e4d2e6ff7f06d1c",
    "0x9a4f64e953595df82d1b4f570d34c4f4f0cfaf729a61e9d60e83e579e1aa283e",
    "0x19ba6c6333e0e9a15bf67523e0676e2f23eb8e574092552d5e888c64a4bb3681",
]
OZ_ABCDEF_UNSORTED = [
    "0x23be0977360f08bb0bd7f709a7d543d2cd779c79c66d74e0441919871647de2b",
    "0x8f7234e8cfe39c08ca84a3a3e3274f574af26fd15165fe29e09cbab742daccd9",
    "0x7b0c6cd04b82bfc0e250030a5d2690c52585e0cc6a4f3bc7909d7723b0236ece",
    "0x03707d7802a71ca56a8ad8028da98c4f1dbec55b31b4a25d536b5309cc20eda9",
    "0xfa914d99a18dc32d9725b3ef1c50426deb40ec8d0885dac8edcc5bfd6d030016",
    "0xc62a8cfa41edc0ef6f6ae27a2985b7d39c7fea770787d7e104696c6e81f64848",
    "0x9a4f64e953595df82d1b4f570d34c4f4f0cfaf729a61e9d60e83e579e1aa283e",
    "0xeba909cf4bb90c6922771d7f126ad0fd11dfde93f3937a196274e1ac20fd2f5b",
    "0x9cf5a63718145ba968a01c1d557020181c5b252f665cf7386d370eddb176517b",
    "0x19ba6c6333e0e9a15bf67523e0676e2f23eb8e574092552d5e888c64a4bb3681",
    "0x9c15a6a0eaeed500fd9eed4cbeab71f797cefcc67bfd46683e4d2e6ff7f06d1c",
]
# OpenZeppelin merkle-tree src/standard.test.ts.md, "dump (with seed=0)", snapshot 1: a
# 12-leaf sorted tree over (uint256, string[]) values.
OZ_SEED0_TREE = [
    "0x157e9c38a2614a4493a0e4c38e84a1b43a932665e4d42fa2bf345824b9f101b7",
    "0xcd255af645cd649e62c7e56d324bc8b525a39bd311e05a1a5de00d73ff1fe253",
    "0xcdf36ec033d7950f6d6e01f9a66a67c3940ea15650a1300a5015d068c4543cf3",
    "0x276d63ffce14279caf791d010be5c715c64ec407dba2857628a9741fcd18bcd4",
    "0xf1e0e7f88a5f498d37d5a40af968ad629eabc52b908b9575f3a9735b3cf3a28b",
    "0xcd9fc8f6b33a02d7a601b0c77e7d36f230bc7871623435fe9aecb52887efefc1",
    "0x70ce5864fbf25654a2d3319cab6df02731e260754370f6444c03678b7e5b616a",
    "0xc9487ccb1a15e20f708fd5d6a93b049034d1ec516624b927b5f88ab37f20d06d",
    "0xada38b6fdf007666bf5b19773191f484c99c249e44e1b07d5218f9eefb5ff9b3",
    "0x0b592340f8a37b1fd772c131d85d1fe11f5b5a14ff1575163be1f48cdb569b60",
    "0x18c5e1f567b176b912f504943387285ba231aba9fab91569f5d90e3d72e881ba",
    "0xfff0acc0b7c7dd4dca88db8b9ea4cb251797946d4bf09314f9487d079cbc8168",
    "0xf37f0986a1809cffdf18075f7ff12bdfbc6b46ac4966cbc1dbecf50e59b8146f",
    "0xc141a2c1fa419824b43dbded51a5087ffe99d20964d995f96fb619781a6662d2",
    "0xb2ec04776c599a72b9b1d2dfdee91560dc9f479643e201020ded568f68c06a80",
    "0xa596ffee17c3519d0311edb25ac6d28e08407856a2c6fd1db81a9260295f2851",
    "0x8cf4ffe7174807707948cd21858ba8360b8f37a69e12696a722c9a500970b7dd",
    "0x6de05019198fcc90ba19896fca48ba0c8f9dd00b7264c7a22284351f3652ea5c",
    "0x67c6abdc93cb48b54a8f8e02762d6582ba99455b1112824fa2913e51c14610a3",
    "0x53e63148bd7b5c974996c9469d0fcc9e764d34ddafec28eabb4a93399eb8b882",
    "0x53722a4093d3d803b22250c797e0d4fdda3aebfd9c151c8c775ffa8b440f4629",
    "0x4bda3fa8b7e83fdab2048e0faa3fc2edc803df4f2df2996309c71d9d560ea667",
    "0x02ad059b3cbe14ca74695645b9287bab95865054a44f35870ccb3224d57ae497",
]


def tree_nodes(tree: MerkleTree) -> list[str]:
    return ["0x" + tree.node(index).hex() for index in range(tree.node_count)]


def abcdef_leaves() -> list[bytes]:
    return [standard_leaf(["string"], [letter]) for letter in "abcdef"]


def random_leaves(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(32) for _ in range(count)]


def reference_tree(leaves: list[bytes]) -> tuple[bytes, list[list[bytes]]]:
    """Root and proofs computed recursively from the documented layout, in input order."""
    ordered = sorted(leaves)
    count = len(ordered)

    def node(index: int) -> bytes:
        if index >= count - 1:
            return ordered[2 * count - 2 - index]
        return reference_pair(node(2 * index + 1), node(2 * index + 2))

    def proof_of(index: int) -> list[bytes]:
        if index == 0:
            return []
        sibling = index + 1 if index % 2 else index - 1
        return [node(sibling), *proof_of((index - 1) // 2)]

    proofs = [proof_of(2 * count - 2 - ordered.index(leaf)) for leaf in leaves]
    return node(0), proofs


def test_sorted_tree_matches_openzeppelin_snapshot_for_abcdef() -> None:
    tree = build_tree(abcdef_leaves())

    assert tree_nodes(tree) == OZ_ABCDEF_SORTED


def test_unsorted_tree_matches_openzeppelin_snapshot_for_abcdef() -> None:
    tree = build_tree(abcdef_leaves(), sort_leaves=False)

    assert tree_nodes(tree) == OZ_ABCDEF_UNSORTED


def test_every_abcdef_proof_verifies_against_the_openzeppelin_root() -> None:
    leaves = abcdef_leaves()
    tree = build_tree(leaves)

    for index, leaf in enumerate(leaves):
        assert verify(h(OZ_ABCDEF_SORTED[0]), leaf, tree.proof(index))


def test_tree_over_openzeppelin_seed0_leaves_reproduces_the_whole_snapshot() -> None:
    leaves = [h(node) for node in OZ_SEED0_TREE[11:]]
    random.Random(3).shuffle(leaves)

    tree = build_tree(leaves)

    assert tree_nodes(tree) == OZ_SEED0_TREE


def test_standard_leaf_of_openzeppelin_seed0_value_with_empty_array_matches_snapshot() -> None:
    value = 28058159076087978205069147618309547967726169776540400708466739311867552389147

    leaf = standard_leaf(["uint256", "string[]"], [value, []])

    assert "0x" + leaf.hex() == OZ_SEED0_TREE[22]


def test_three_leaf_tree_matches_hand_derivation() -> None:
    a, b, c = sorted(random_leaves(3, seed=1))

    tree = build_tree([c, a, b])

    inner = reference_pair(a, b)
    assert tree.root == reference_pair(inner, c)
    assert [tree.node(i) for i in (2, 3, 4)] == [c, b, a]
    assert tree.proof(0) == [inner]
    assert tree.proof(1) == [b, c]
    assert tree.proof(2) == [a, c]


def test_five_leaf_tree_matches_hand_derivation() -> None:
    a, b, c, d, e = sorted(random_leaves(5, seed=2))

    tree = build_tree([e, d, c, b, a])

    ab, cd = reference_pair(a, b), reference_pair(c, d)
    left = reference_pair(ab, e)
    assert tree.root == reference_pair(left, cd)
    assert tree.proof(4) == [b, e, cd]
    assert tree.proof(0) == [ab, cd]
    assert tree.proof(2) == [d, left]
    assert tree.tree_indices.tolist() == [4, 5, 6, 7, 8]


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 17, 31, 33, 100])
def test_root_and_every_proof_match_the_recursive_reference(count: int) -> None:
    leaves = random_leaves(count, seed=count)

    tree = build_tree(leaves)

    root, proofs = reference_tree(leaves)
    assert tree.root == root
    assert [tree.proof(index) for index in range(count)] == proofs


def test_single_leaf_tree_has_the_leaf_as_root_and_an_empty_proof() -> None:
    (leaf,) = random_leaves(1, seed=9)

    tree = build_tree([leaf])

    assert tree.root == leaf
    assert tree.proof(0) == []
    assert verify(tree.root, leaf, [])


def test_every_proof_of_a_random_tree_verifies() -> None:
    leaves = random_leaves(1_000, seed=4)

    tree = build_tree(leaves)

    assert all(verify(tree.root, leaf, tree.proof(i)) for i, leaf in enumerate(leaves))


def test_tampered_leaf_fails_verification() -> None:
    leaves = random_leaves(50, seed=5)
    tree = build_tree(leaves)
    tampered = bytes([leaves[7][0] ^ 1]) + leaves[7][1:]

    assert not verify(tree.root, tampered, tree.proof(7))


@pytest.mark.parametrize("position", [0, 2, -1])
def test_tampered_proof_element_fails_verification(position: int) -> None:
    leaves = random_leaves(50, seed=6)
    tree = build_tree(leaves)
    proof = tree.proof(11)
    proof[position] = bytes([proof[position][0] ^ 0x80]) + proof[position][1:]

    assert not verify(tree.root, leaves[11], proof)


def test_proof_of_another_leaf_fails_verification() -> None:
    leaves = random_leaves(50, seed=7)
    tree = build_tree(leaves)

    assert not verify(tree.root, leaves[3], tree.proof(4))


def test_truncated_or_malformed_proof_fails_verification() -> None:
    leaves = random_leaves(20, seed=8)
    tree = build_tree(leaves)
    proof = tree.proof(2)

    assert not verify(tree.root, leaves[2], proof[:-1])
    assert not verify(tree.root, leaves[2], [*proof[:-1], proof[-1][:31]])
    assert not verify(tree.root[:31], leaves[2], proof)


def test_hash_pair_is_commutative_and_hashes_the_sorted_concatenation() -> None:
    a, b = random_leaves(2, seed=10)

    assert hash_pair(a, b) == hash_pair(b, a) == keccak(min(a, b) + max(a, b))


def test_process_proof_folds_sorted_pairs_from_leaf_to_root() -> None:
    leaf, first, second = random_leaves(3, seed=11)

    assert process_proof(leaf, [first, second]) == reference_pair(
        reference_pair(leaf, first), second
    )


def test_equal_leaf_hashes_keep_input_order_like_a_stable_sort() -> None:
    a, b = sorted(random_leaves(2, seed=12))

    tree = build_tree([b, a, b])

    assert tree.tree_indices.tolist() == [3, 4, 2]
    assert all(verify(tree.root, leaf, tree.proof(i)) for i, leaf in enumerate([b, a, b]))


def test_serialisation_round_trip_keeps_nodes_order_and_proofs() -> None:
    leaves = random_leaves(77, seed=13)
    tree = build_tree(leaves)

    blob = tree.to_bytes()
    restored = MerkleTree.from_bytes(blob)

    assert restored == tree
    assert len(blob) == 9 + (2 * 77 - 1) * 32 + 4 * 77
    assert [restored.proof(i) for i in range(77)] == [tree.proof(i) for i in range(77)]


@pytest.mark.parametrize(
    "mangle",
    [
        lambda blob: blob[:-1],
        lambda blob: b"XXXX" + blob[4:],
        lambda blob: blob[:5] + (0).to_bytes(4, "big") + blob[9:],
        lambda blob: blob + b"\x00",
    ],
)
def test_RevertWhen_serialised_tree_is_malformed(mangle: object) -> None:
    blob = build_tree(random_leaves(5, seed=14)).to_bytes()

    with pytest.raises(CreditNetValueError):
        MerkleTree.from_bytes(mangle(blob))  # type: ignore[operator]


def test_proof_for_leaf_finds_every_leaf_by_binary_search() -> None:
    leaves = random_leaves(333, seed=15)
    tree = MerkleTree.from_bytes(build_tree(leaves).to_bytes())

    assert all(tree.proof_for_leaf(leaf) == tree.proof(i) for i, leaf in enumerate(leaves))


def test_RevertWhen_proof_is_requested_for_a_leaf_not_in_the_tree() -> None:
    tree = build_tree(random_leaves(10, seed=16))

    with pytest.raises(CreditNetValueError):
        tree.proof_for_leaf(b"\x00" * 32)
    with pytest.raises(CreditNetValueError):
        tree.proof_for_leaf(b"\xff" * 32)


@pytest.mark.parametrize("count", [1, 2, 3, 6, 13, 64, 65, 1_000])
def test_all_proofs_packed_equal_the_individual_proofs(count: int) -> None:
    tree = build_tree(random_leaves(count, seed=count + 100))

    packed = tree.all_proofs_packed()

    assert packed == [pack_proof(tree.proof(i)) for i in range(count)]
    assert all(unpack_proof(p) == tree.proof(i) for i, p in enumerate(packed))


def test_tree_consistency_check_detects_a_corrupted_inner_node() -> None:
    tree = build_tree(random_leaves(9, seed=17))
    corrupted = MerkleTree(
        tree.nodes[:32] + b"\x00" * 32 + tree.nodes[64:], tree.leaf_count, tree.tree_indices
    )

    assert tree.is_consistent()
    assert not corrupted.is_consistent()


def test_RevertWhen_tree_has_no_leaves_or_a_leaf_is_not_32_bytes() -> None:
    with pytest.raises(CreditNetValueError):
        build_tree([])
    with pytest.raises(CreditNetValueError):
        build_tree([b"\x01" * 31])


def test_RevertWhen_proof_index_is_out_of_range() -> None:
    tree = build_tree(random_leaves(4, seed=18))

    with pytest.raises(CreditNetValueError):
        tree.proof(4)
    with pytest.raises(CreditNetValueError):
        tree.proof_at(0)


def test_RevertWhen_packed_proof_is_not_a_multiple_of_32_bytes() -> None:
    with pytest.raises(CreditNetValueError):
        unpack_proof(b"\x00" * 33)


def test_leaves_sharing_an_eight_byte_prefix_sort_on_the_full_hash_stably() -> None:
    rng = random.Random(19)
    prefix = rng.randbytes(8)
    shared = [prefix + rng.randbytes(24) for _ in range(6)]
    leaves = [*shared, shared[2], *random_leaves(9, seed=20), shared[0]]

    tree = build_tree(leaves)

    expected_root, expected_proofs = reference_tree(leaves)
    assert tree.root == expected_root
    for index, leaf in enumerate(leaves):
        assert verify(tree.root, leaf, tree.proof(index))
        if leaves.count(leaf) == 1:  # the reference finds a repeated leaf's first copy only
            assert tree.proof(index) == expected_proofs[index]
    order = sorted(range(len(leaves)), key=leaves.__getitem__)
    assert [tree.tree_indices[i] for i in order] == list(
        range(2 * len(leaves) - 2, len(leaves) - 2, -1)
    )


def test_streamed_proof_batches_cover_every_leaf_once_with_its_proof() -> None:
    leaves = random_leaves(1_000, seed=21)
    tree = build_tree(leaves)

    seen: dict[int, bytes] = {}
    for batch in tree.iter_proof_batches(batch_leaves=97):
        for position, packed in zip(batch.positions.tolist(), batch.packed, strict=True):
            assert position not in seen
            seen[position] = packed.tobytes()

    assert seen == {i: pack_proof(tree.proof(i)) for i in range(1_000)}


def test_an_array_of_leaves_builds_the_same_tree_as_a_list() -> None:
    leaves = random_leaves(257, seed=22)
    array = np.frombuffer(b"".join(leaves), dtype=np.uint8).reshape(257, 32)

    assert build_tree(array) == build_tree(leaves)
