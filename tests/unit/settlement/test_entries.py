"""Leaf encoding must equal `abi.encode(uint64, uint64, uint32, uint8, int256, bytes32)` byte
for byte (the last word is the entry's private salt)."""

from __future__ import annotations

import pytest
from Crypto.Hash import keccak as pycryptodome_keccak
from eth_abi.abi import encode as abi_encode

from node_api.kernel.errors import CreditNetValueError
from settlement.entries import (
    LEAF_ABI_TYPES,
    LEAF_ENCODED_BYTES,
    EntryKind,
    SettlementEntry,
    compute_leaf_hashes,
    sum_amounts_fen,
)

SALT = bytes(range(32))
EDGE_ENTRIES = [
    SettlementEntry(1, 1, 1, EntryKind.PRINCIPAL_FUNDED, -150_000, SALT),
    SettlementEntry(20240611, 99, 7, EntryKind.INTEREST_SHARE, 1, b"\xff" * 32),
    SettlementEntry(0, 0, 0, EntryKind.PRINCIPAL_FUNDED, 0, b"\x00" * 32),
    SettlementEntry(
        2**64 - 1, 2**64 - 1, 2**32 - 1, EntryKind.GUARANTEE_PAYMENT, 2**255 - 1, SALT[::-1]
    ),
    SettlementEntry(5, 6, 7, EntryKind.CHARGE_OFF, -(2**255), SALT),
    SettlementEntry(5, 6, 7, EntryKind.REFUND, -1, b"\x80" + b"\x00" * 31),
]


def keccak(data: bytes) -> bytes:
    return pycryptodome_keccak.new(digest_bits=256, data=data).digest()


@pytest.mark.parametrize("entry", EDGE_ENTRIES)
def test_leaf_encoding_equals_eth_abi_encode(entry: SettlementEntry) -> None:
    expected = abi_encode(list(LEAF_ABI_TYPES), list(entry.leaf_values()))

    assert entry.encode_leaf() == expected
    assert len(expected) == LEAF_ENCODED_BYTES


@pytest.mark.parametrize("entry", EDGE_ENTRIES)
def test_leaf_hash_is_double_keccak_of_the_abi_encoding(entry: SettlementEntry) -> None:
    encoded = abi_encode(list(LEAF_ABI_TYPES), list(entry.leaf_values()))

    assert entry.leaf_hash() == keccak(keccak(encoded))


def test_batch_leaf_hashes_equal_single_leaf_hashes_in_order() -> None:
    assert compute_leaf_hashes(EDGE_ENTRIES) == [entry.leaf_hash() for entry in EDGE_ENTRIES]


def test_source_ref_is_not_part_of_the_leaf() -> None:
    plain = SettlementEntry(3, 4, 5, EntryKind.FEE_SHARE, 12, SALT)
    traced = SettlementEntry(3, 4, 5, EntryKind.FEE_SHARE, 12, SALT, source_ref="posting-881")

    assert plain.leaf_hash() == traced.leaf_hash()


def test_every_field_of_the_leaf_changes_its_hash() -> None:
    base = SettlementEntry(3, 4, 5, EntryKind.FEE_SHARE, 12, SALT)
    variants = [
        SettlementEntry(4, 4, 5, EntryKind.FEE_SHARE, 12, SALT),
        SettlementEntry(3, 5, 5, EntryKind.FEE_SHARE, 12, SALT),
        SettlementEntry(3, 4, 6, EntryKind.FEE_SHARE, 12, SALT),
        SettlementEntry(3, 4, 5, EntryKind.SERVICE_FEE, 12, SALT),
        SettlementEntry(3, 4, 5, EntryKind.FEE_SHARE, -12, SALT),
        SettlementEntry(3, 4, 5, EntryKind.FEE_SHARE, 12, SALT[:-1] + b"\x00"),
    ]

    assert len({base.leaf_hash(), *(variant.leaf_hash() for variant in variants)}) == 7


def test_the_salt_is_the_sixth_word_of_the_leaf_as_it_is() -> None:
    entry = SettlementEntry(3, 4, 5, EntryKind.FEE_SHARE, -12, SALT)

    assert entry.encode_leaf()[5 * 32 :] == SALT
    assert entry.leaf_values()[-1] == SALT


def test_entry_kind_numbers_are_stable() -> None:
    assert {kind.name: int(kind) for kind in EntryKind} == {
        "PRINCIPAL_FUNDED": 1,
        "PRINCIPAL_REPAID": 2,
        "INTEREST_SHARE": 3,
        "SERVICE_FEE": 4,
        "FEE_SHARE": 5,
        "CHANNEL_COMMISSION": 6,
        "MERCHANT_DISCOUNT": 7,
        "REFUND": 8,
        "CHARGE_OFF": 9,
        "GUARANTEE_PAYMENT": 10,
        "RECOVERY": 11,
        "DEBT_SALE": 12,
    }


@pytest.mark.parametrize(
    ("fields", "field_name"),
    [
        ((-1, 1, 1, EntryKind.REFUND, 1), "cycle_id"),
        ((2**64, 1, 1, EntryKind.REFUND, 1), "cycle_id"),
        ((1, 2**64, 1, EntryKind.REFUND, 1), "entry_id"),
        ((1, 1, 2**32, EntryKind.REFUND, 1), "partner_id"),
        ((1, 1, -1, EntryKind.REFUND, 1), "partner_id"),
        ((1, 1, 1, 0, 1), "kind"),
        ((1, 1, 1, 13, 1), "kind"),
        ((1, 1, 1, EntryKind.REFUND, 2**255), "amount_fen"),
        ((1, 1, 1, EntryKind.REFUND, -(2**255) - 1), "amount_fen"),
        ((1, 1, 1, EntryKind.REFUND, 1, SALT[:31]), "salt"),
        ((1, 1, 1, EntryKind.REFUND, 1, SALT + b"\x00"), "salt"),
        ((1, 1, 1, EntryKind.REFUND, 1, "0x" + SALT.hex()), "salt"),
        ((1, 1, 1, EntryKind.REFUND, 1, bytearray(SALT)), "salt"),
    ],
)
def test_RevertWhen_a_field_does_not_fit_its_abi_type(
    fields: tuple[object, ...], field_name: str
) -> None:
    with pytest.raises(CreditNetValueError) as raised:
        SettlementEntry(*(fields + (SALT,) * (6 - len(fields))))  # type: ignore[arg-type]

    assert raised.value.field == field_name


def test_sum_amounts_adds_signed_amounts() -> None:
    assert sum_amounts_fen(EDGE_ENTRIES[:2]) == -149_999
