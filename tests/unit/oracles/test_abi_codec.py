"""The fast event decoder gives what eth_abi gives, and errors decode by name."""

from __future__ import annotations

from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak
from hypothesis import given
from hypothesis import strategies as st

from oracles.abi_codec import ContractCodec, describe_error, to_json_value

EVENT_ABI: list[dict[str, Any]] = [
    {
        "type": "event",
        "name": "Sample",
        "anonymous": False,
        "inputs": [
            {"name": "id", "type": "bytes32", "indexed": True},
            {"name": "who", "type": "address", "indexed": True},
            {"name": "amount", "type": "int256", "indexed": False},
            {"name": "count", "type": "uint64", "indexed": False},
            {"name": "flag", "type": "bool", "indexed": False},
            {"name": "payout", "type": "address", "indexed": False},
        ],
    },
    {
        "type": "error",
        "name": "CycleNotBalanced",
        "inputs": [{"name": "sum", "type": "int256"}],
    },
]
DATA_TYPES = ["int256", "uint64", "bool", "address"]


@given(
    event_id=st.binary(min_size=32, max_size=32),
    who=st.binary(min_size=20, max_size=20),
    amount=st.integers(-(2**255), 2**255 - 1),
    count=st.integers(0, 2**64 - 1),
    flag=st.booleans(),
    payout=st.binary(min_size=20, max_size=20),
)
def test_fast_event_decoding_matches_eth_abi(
    event_id: bytes, who: bytes, amount: int, count: int, flag: bool, payout: bytes
) -> None:
    codec = ContractCodec(EVENT_ABI)
    (event,) = codec.events.values()
    values = [amount, count, flag, "0x" + payout.hex()]
    data = abi_encode(DATA_TYPES, values)
    topics = [event.topic0, event_id, abi_encode(["address"], ["0x" + who.hex()])]
    decoded = event.decode(topics, data)
    expected = [
        to_json_value(t, v) for t, v in zip(DATA_TYPES, abi_decode(DATA_TYPES, data), strict=True)
    ]
    assert [decoded[name] for name in ("amount", "count", "flag", "payout")] == expected
    assert decoded["id"] == "0x" + event_id.hex()
    assert decoded["who"].lower() == "0x" + who.hex()


def test_custom_error_decodes_by_name_with_its_arguments() -> None:
    codec = ContractCodec(EVENT_ABI)
    data = keccak(text="CycleNotBalanced(int256)")[:4] + abi_encode(["int256"], [-7])
    decoded = codec.decode_error(data)
    assert decoded == ("CycleNotBalanced", {"sum": -7})
    assert describe_error(decoded, data) == "CycleNotBalanced(sum=-7)"
    assert codec.decode_error(b"\x01\x02\x03\x04") is None
    assert describe_error(None, b"") == "revert without data"
