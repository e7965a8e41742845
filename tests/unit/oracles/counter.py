"""A tiny test-only contract (Counter) and helpers to write, deploy and use it."""

from __future__ import annotations

from pathlib import Path

from eth_typing import ChecksumAddress, HexStr
from web3 import Web3

from oracles.chain import LocalAccounts, send_transaction
from oracles.compiler import CompiledContracts
from oracles.deploy import encode_call, encode_constructor_args

COUNTER_SOURCE = """// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @notice Test-only contract: an owner (immutable) and a counter (storage).
contract Counter {
    address public immutable owner;
    uint256 public count;

    event Incremented(uint256 count);

    error NotOwner(address caller);

    constructor(address owner_, uint256 start) {
        owner = owner_;
        count = start;
    }

    function increment() external {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        count += 1;
        emit Incremented(count);
    }
}
"""


def write_contracts(folder: Path, sources: dict[str, str]) -> Path:
    """Write `sources` ({relative path: text}) under folder/contracts and return that dir."""
    contracts_dir = folder / "contracts"
    for relative, text in sources.items():
        path = contracts_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return contracts_dir


def deploy_counter(
    w3: Web3, compiled: CompiledContracts, accounts: LocalAccounts
) -> ChecksumAddress:
    """Deploy Counter(owner = deployer, start = 41)."""
    artifact = compiled.artifact("Counter")
    args = encode_constructor_args(artifact, [accounts.deployer.address, 41])
    receipt = send_transaction(
        w3, accounts.deployer, {"data": HexStr(artifact.bytecode + args[2:])}
    )
    return Web3.to_checksum_address(str(receipt["contractAddress"]))


def increment(
    w3: Web3, compiled: CompiledContracts, accounts: LocalAccounts, address: str
) -> HexStr:
    """Counter.increment() from the deployer; the transaction hash."""
    calldata = HexStr(encode_call(w3, compiled.artifact("Counter"), "increment", []))
    to = Web3.to_checksum_address(address)
    receipt = send_transaction(w3, accounts.deployer, {"to": to, "data": calldata})
    return HexStr(receipt["transactionHash"].to_0x_hex())


def read_count(w3: Web3, compiled: CompiledContracts, address: str) -> int:
    counter = w3.eth.contract(
        address=Web3.to_checksum_address(address), abi=compiled.artifact("Counter").abi
    )
    count: int = counter.functions.count().call()
    return count
