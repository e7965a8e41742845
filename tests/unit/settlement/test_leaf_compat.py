"""Salted settlement leaves agree with the two other implementations a partner may use:
`ClearingHouse.computeEntryLeaf` on the compiled contract, and `@openzeppelin/merkle-tree`.

The JavaScript vector below was produced with `@openzeppelin/merkle-tree` 1.x:
`StandardMerkleTree.of(values, ["uint64","uint64","uint32","uint8","int256","bytes32"])`
over `VECTOR` (each salt derived with `LeafSalts(VECTOR_ROOT_SECRET)`), printing `tree.root`,
`tree.leafHash(v)` and `tree.getProof(i)`.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from eth_abi.abi import decode as abi_decode
from web3 import Web3

from node_api.kernel.chain import EntryKind
from oracles.compiler import CompiledContracts
from settlement.entries import SettlementEntry, compute_leaf_hashes
from settlement.merkle import build_tree, verify
from settlement.salts import LeafSalts

VECTOR_ROOT_SECRET = b"creditnet-test-leaf-salt-secret"
VECTOR = [
    (20250630, 1, 2, EntryKind.PRINCIPAL_FUNDED, -700_000),
    (20250630, 2, 1, EntryKind.PRINCIPAL_FUNDED, 700_000),
    (20250630, 3, 2, EntryKind.INTEREST_SHARE, 1_830),
    (20250630, 4, 1, EntryKind.INTEREST_SHARE, -1_830),
    (20250630, 5, 3, EntryKind.CHANNEL_COMMISSION, 4_500),
    (20250630, 6, 1, EntryKind.CHANNEL_COMMISSION, -4_500),
    (20250630, 7, 2**32 - 1, EntryKind.REFUND, -(2**255)),
]
JS_ROOT = "530ef416c6b659ba857033858b88671ec8c301ad48f064562d575aad67456dd9"
JS_LEAVES = [
    "55d95ddbad22a61d6fb61ac0a737a63e508326368fc34f46df609ae4059d3ecf",
    "fd47c76427f408c19cecff76d01589d5a2e20832cdf53786640861ad57c278b8",
    "57e5a3e784c200bc11463b10fbc54f5903ea9d988acd37dab79afe91159d2b20",
    "fbcc71f9d86831b37fa11896e28ec1f177b96840398d6f8336d627ce4ad997a1",
    "4fa6c274c3e6312b8523cc13ff1c892dedd8de4b1fd16c5ace9ced5173ea3bae",
    "2614a7103b0dab91ffb13df4b0b19e11cf0ea049d408f96458a3f21426072116",
    "d7160882d720e5b16b189f574768467283959519092416dde7443acc88ea96e6",
]
_A, _B = (
    "1aad4dcf64d036b795bf48e6f66b70bd03693d9c259798ab8226e114235eb4b5",
    "61d65974cfe53f3aaf0fdad6a4b43689cbfb7bd16a5985923d19be8e2b3e3457",
)
_C, _D = (
    "bae65cdb3b51a822cfba4d18cbf4fcfdc4276883733f559c83b7cda1b2fd5499",
    "38e5159d322fe58a53273db554572d42286e006a7b29e43db2ebdc48f1f872be",
)
JS_PROOFS = [
    [JS_LEAVES[2], _A, _B],
    ["d1f06065e662c5ffee607381f2b88daec55c162b49c64e439c2d7a64d8eb4845", _C],
    [JS_LEAVES[0], _A, _B],
    [JS_LEAVES[6], _D, _B],
    [JS_LEAVES[5], JS_LEAVES[1], _C],
    [JS_LEAVES[4], JS_LEAVES[1], _C],
    [JS_LEAVES[3], _D, _B],
]


def _vector_entries() -> list[SettlementEntry]:
    salts = LeafSalts(VECTOR_ROOT_SECRET)
    return [
        SettlementEntry(cycle, entry, partner, kind, amount, salts.salt(cycle, entry, partner))
        for cycle, entry, partner, kind, amount in VECTOR
    ]


def test_salted_leaves_root_and_proofs_equal_openzeppelin_merkle_tree() -> None:
    entries = _vector_entries()
    leaves = compute_leaf_hashes(entries)
    tree = build_tree(leaves)
    assert [leaf.hex() for leaf in leaves] == JS_LEAVES
    assert tree.root.hex() == JS_ROOT
    for index, expected in enumerate(JS_PROOFS):
        assert [sibling.hex() for sibling in tree.proof(index)] == expected
        assert verify(tree.root, leaves[index], tree.proof(index))


def _compute_entry_leaf(w3: Web3, compiled: CompiledContracts, entry: SettlementEntry) -> bytes:
    """`computeEntryLeaf` by `eth_call` on the compiled runtime code, put at an address by a
    state override (the function is pure: no deployment or constructor needed)."""
    artifact = compiled.artifact("ClearingHouse")
    address = Web3.to_checksum_address("0x" + "c1" * 20)
    contract = w3.eth.contract(address=address, abi=artifact.abi)
    data = contract.encode_abi("computeEntryLeaf", args=list(entry.leaf_values()))
    override: Any = {address: {"code": artifact.deployed_bytecode}}
    output = w3.eth.call({"to": address, "data": data}, "latest", override)
    (leaf,) = abi_decode(["bytes32"], bytes(output))
    return bytes(leaf)


@pytest.mark.chain
def test_a_python_leaf_equals_compute_entry_leaf_on_the_compiled_contract(
    w3: Web3, compiled: CompiledContracts
) -> None:
    salts = LeafSalts(b"a-node-secret")
    rng = random.Random(11)
    entries = _vector_entries()
    for entry_id in range(1, 9):
        partner_id = rng.randrange(2**32)
        entries.append(
            SettlementEntry(
                rng.randrange(2**64),
                entry_id,
                partner_id,
                rng.choice(list(EntryKind)),
                rng.randrange(-(2**255), 2**255),
                salts.salt(7, entry_id, partner_id),
            )
        )
    for entry in entries:
        assert _compute_entry_leaf(w3, compiled, entry) == entry.leaf_hash()
