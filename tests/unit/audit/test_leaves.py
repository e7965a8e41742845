"""The auditor's leaves and commitments equal the standard ABI encodings they stand for."""

from __future__ import annotations

import pytest
from eth_abi.abi import encode
from eth_utils.crypto import keccak
from hypothesis import given
from hypothesis import strategies as st

from node_api.kernel.chain import EntryKind
from oracles.audit.leaves import (
    compute_agreement_commitment,
    compute_entry_leaf,
    compute_line_leaf,
    compute_root,
)
from settlement.entries import SettlementEntry

uint = st.integers(min_value=0, max_value=2**32 - 1)
hash32 = st.binary(min_size=32, max_size=32)


@given(uint, uint, uint, st.sampled_from(list(EntryKind)), st.integers(-(2**200), 2**200), hash32)
def test_entry_leaf_is_the_double_hashed_abi_encoding(
    cycle_id: int, entry_id: int, partner_id: int, kind: EntryKind, amount_fen: int, salt: bytes
) -> None:
    encoded = encode(
        ["uint64", "uint64", "uint32", "uint8", "int256", "bytes32"],
        [cycle_id, entry_id, partner_id, int(kind), amount_fen, salt],
    )
    leaf = compute_entry_leaf(cycle_id, entry_id, partner_id, int(kind), amount_fen, salt)
    assert leaf == keccak(keccak(encoded))
    assert (
        leaf == SettlementEntry(cycle_id, entry_id, partner_id, kind, amount_fen, salt).leaf_hash()
    )


def test_RevertWhen_an_entry_leaf_salt_is_not_32_bytes() -> None:
    with pytest.raises(ValueError):
        compute_entry_leaf(1, 1, 1, 1, 1, b"\x01" * 31)


@given(hash32, uint, st.integers(0, 2**128))
def test_line_leaf_is_the_double_hashed_abi_encoding(
    agreement: bytes, cycle_id: int, outstanding_fen: int
) -> None:
    encoded = encode(["bytes32", "uint64", "uint256"], [agreement, cycle_id, outstanding_fen])
    assert compute_line_leaf("0x" + agreement.hex(), cycle_id, outstanding_fen) == keccak(
        keccak(encoded)
    )


@given(hash32, hash32, hash32, uint, st.integers(0, 2**64 - 1), uint, st.integers(0, 2**64 - 1))
def test_commitment_is_keccak_of_the_agreement_input_encoding(
    agreement: bytes,
    borrower: bytes,
    terms: bytes,
    product: int,
    limit_fen: int,
    apr_bps: int,
    opened_at: int,
) -> None:
    encoded = encode(
        ["(bytes32,bytes32,bytes32,uint32,uint64,uint32,uint64)"],
        [(agreement, borrower, terms, product, limit_fen, apr_bps, opened_at)],
    )
    expected = "0x" + keccak(encoded).hex()
    assert (
        compute_agreement_commitment(
            "0x" + agreement.hex(),
            "0x" + borrower.hex(),
            "0x" + terms.hex(),
            product,
            limit_fen,
            apr_bps,
            opened_at,
        )
        == expected
    )


def test_root_of_one_leaf_is_the_leaf_and_of_none_is_zero() -> None:
    leaf = compute_entry_leaf(1, 1, 1, 1, 1, b"\x01" * 32)
    assert compute_root([leaf]) == "0x" + leaf.hex()
    assert compute_root([]) == "0x" + "00" * 32
