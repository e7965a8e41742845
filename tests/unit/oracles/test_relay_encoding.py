"""The relayer's agreement calldata: hex-built words, byte for byte what eth_abi encodes."""

from __future__ import annotations

import pytest
from eth_abi.abi import encode as abi_encode
from hypothesis import given

from oracles.abi_codec import encode_static_tuple_array_json
from tests.unit.oracles.oracle_helpers import AGREEMENT_ROWS, AGREEMENT_TYPES


@given(AGREEMENT_ROWS)
def test_json_rows_encode_as_eth_abi(
    rows: list[tuple[bytes, bytes, bytes, int, int, int, int]],
) -> None:
    expected = abi_encode([f"({','.join(AGREEMENT_TYPES)})[]"], [rows])
    as_json = [("0x" + a.hex(), "0x" + b.hex(), "0x" + c.hex(), *rest) for a, b, c, *rest in rows]
    assert encode_static_tuple_array_json(AGREEMENT_TYPES, as_json) == expected


@pytest.mark.parametrize(
    ("types", "row"),
    [
        (["uint32"], [2**32]),
        (["uint64"], [-1]),
        (["uint32"], ["7"]),
        (["bytes32"], ["0x" + "00" * 31]),
        (["bytes32"], ["00" * 33]),
        (["bytes32"], [b"\x00" * 32]),
        (["bytes32"], ["0x" + "zz" * 32]),
        (["bytes32"], ["0x" + "00" * 31 + " 0"]),
        (["bytes32", "uint32"], ["0x" + "00" * 32]),
        (["address"], ["0x" + "00" * 20]),
    ],
)
def test_RevertWhen_a_json_value_does_not_fit_its_type(types: list[str], row: list[object]) -> None:
    with pytest.raises(ValueError):
        encode_static_tuple_array_json(types, [row])
