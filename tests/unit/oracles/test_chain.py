"""The chain client: reachability, dev accounts, signed sends."""

from __future__ import annotations

import time

import pytest
from web3 import Web3

from node_api.kernel.errors import ChainError
from oracles.anvil import pick_free_port
from oracles.chain import LocalAccounts, connect, get_redacted_url, send_transaction
from oracles.compiler import CompiledContracts
from oracles.deploy import encode_call
from tests.unit.oracles.counter import deploy_counter, increment, read_count

# anvil's first two dev accounts, as every Foundry/Hardhat user knows them.
ANVIL_ACCOUNT_0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
ANVIL_ACCOUNT_1 = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def test_RevertWhen_rpc_is_dead_message_is_one_line_and_fast() -> None:
    url = f"http://127.0.0.1:{pick_free_port()}"
    started = time.monotonic()

    with pytest.raises(ChainError) as raised:
        connect(url, timeout_s=1.0)

    assert raised.value.detail == f"chain RPC {url} unreachable"
    assert time.monotonic() - started < 3.0


def test_redacted_url_drops_credentials_and_query() -> None:
    url = "https://user:secret@rpc.example.org:8545/v1?apikey=abc"

    assert get_redacted_url(url) == "https://rpc.example.org:8545/v1"


def test_dev_accounts_are_anvils_and_never_show_the_mnemonic() -> None:
    accounts = LocalAccounts()

    assert accounts.deployer.address == ANVIL_ACCOUNT_0
    assert accounts.relayer.address == ANVIL_ACCOUNT_1
    assert len({a.address for a in accounts.signers(3)} | {ANVIL_ACCOUNT_0, ANVIL_ACCOUNT_1}) == 5
    assert "test" not in repr(accounts)


@pytest.mark.chain
def test_send_transaction_signs_locally_and_returns_the_receipt(
    w3_snapshot: Web3, counter_compiled: CompiledContracts, dev_accounts: LocalAccounts
) -> None:
    address = deploy_counter(w3_snapshot, counter_compiled, dev_accounts)
    nonce = w3_snapshot.eth.get_transaction_count(dev_accounts.deployer.address)

    tx_hash = increment(w3_snapshot, counter_compiled, dev_accounts, address)

    tx = w3_snapshot.eth.get_transaction(tx_hash)
    assert tx["nonce"] == nonce
    assert tx["from"] == dev_accounts.deployer.address
    assert read_count(w3_snapshot, counter_compiled, address) == 42


@pytest.mark.chain
def test_RevertWhen_transaction_would_revert(
    w3_snapshot: Web3, counter_compiled: CompiledContracts, dev_accounts: LocalAccounts
) -> None:
    address = deploy_counter(w3_snapshot, counter_compiled, dev_accounts)
    calldata = encode_call(w3_snapshot, counter_compiled.artifact("Counter"), "increment", [])

    with pytest.raises(ChainError) as raised:
        send_transaction(w3_snapshot, dev_accounts.relayer, {"to": address, "data": calldata})

    assert raised.value.code == "tx_reverted"
    selector = Web3.keccak(text="NotOwner(address)")[:4].hex()
    assert selector in str(raised.value.extra["revert_data"])
