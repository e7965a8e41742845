"""The fast sender signs exactly like eth-account and reads JSON-RPC answers right."""

from __future__ import annotations

import pytest
from coincurve import PrivateKey
from eth_abi.abi import encode as abi_encode
from hypothesis import given
from hypothesis import strategies as st

from oracles.abi_codec import encode_static_tuple_array
from oracles.anvil import AnvilProcess, pick_free_port
from oracles.chain import LocalAccounts
from oracles.tx_sender import (
    BroadcastOutcome,
    FeeQuote,
    JsonRpcClient,
    RpcFailure,
    RpcUnavailable,
    classify_broadcast,
    sign_dynamic_fee_call,
)
from tests.unit.oracles.oracle_helpers import AGREEMENT_ROWS, AGREEMENT_TYPES

TO = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


@given(
    nonce=st.integers(0, 2**40),
    gas=st.integers(21_000, 30_000_000),
    data=st.binary(max_size=600),
    max_fee=st.integers(1, 10**12),
)
def test_signed_call_is_byte_for_byte_what_eth_account_signs(
    nonce: int, gas: int, data: bytes, max_fee: int
) -> None:
    account = LocalAccounts().relayer
    fees = FeeQuote(max_fee_per_gas_wei=max_fee, max_priority_fee_per_gas_wei=max_fee // 2)
    raw, tx_hash = sign_dynamic_fee_call(
        PrivateKey(bytes(account.key)), 31337, nonce, TO, data, gas, fees
    )
    reference = account.sign_transaction(
        {
            "type": 2,
            "chainId": 31337,
            "nonce": nonce,
            "to": TO,
            "value": 0,
            "data": data,
            "gas": gas,
            "maxFeePerGas": fees.max_fee_per_gas_wei,
            "maxPriorityFeePerGas": fees.max_priority_fee_per_gas_wei,
        }
    )
    assert raw == bytes(reference.raw_transaction)
    assert tx_hash == bytes(reference.hash)


@given(AGREEMENT_ROWS)
def test_fast_tuple_array_encoding_equals_eth_abi(rows: list[tuple[object, ...]]) -> None:
    expected = abi_encode([f"({','.join(AGREEMENT_TYPES)})[]"], [rows])
    assert encode_static_tuple_array(AGREEMENT_TYPES, rows) == expected


def test_RevertWhen_a_value_does_not_fit_its_type() -> None:
    with pytest.raises(ValueError):
        encode_static_tuple_array(["uint32"], [[2**32]])
    with pytest.raises(ValueError):
        encode_static_tuple_array(["bytes32"], [[b"short"]])
    with pytest.raises(ValueError):
        encode_static_tuple_array(["address"], [["0x" + "00" * 20]])


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        ("0x" + "ab" * 32, BroadcastOutcome.ACCEPTED),
        (RpcFailure(-32000, "already known", b""), BroadcastOutcome.ACCEPTED),
        (RpcFailure(-32003, "nonce too low", b""), BroadcastOutcome.NONCE_TOO_LOW),
        (
            RpcFailure(-32003, "max fee per gas less than block base fee", b""),
            BroadcastOutcome.REJECTED,
        ),
    ],
)
def test_broadcast_answers_are_classified(answer: object, outcome: BroadcastOutcome) -> None:
    assert classify_broadcast(answer).outcome is outcome


def test_RevertWhen_nothing_listens_on_the_rpc_port() -> None:
    client = JsonRpcClient(f"http://127.0.0.1:{pick_free_port()}", timeout_s=1)
    with pytest.raises(RpcUnavailable):
        client.batch([("eth_blockNumber", [])])


@pytest.mark.chain
def test_batch_returns_results_in_order_with_failures_in_place(anvil: AnvilProcess) -> None:
    client = JsonRpcClient(anvil.rpc_url)
    results = client.batch(
        [("eth_chainId", []), ("no_such_method", []), ("eth_getBalance", [TO, "latest"])] * 300
    )
    assert len(results) == 900
    assert results[0] == hex(31337)
    assert isinstance(results[1], RpcFailure)
    assert isinstance(results[899], str)
