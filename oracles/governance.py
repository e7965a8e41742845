"""Admin changes through the NetworkTimelock: schedule, wait the delay, execute.

The timelock holds the admin and pauser roles of the quorum, the registry and the
clearing house (see `oracles.deploy_plan`), so every such change is a public two-step
operation: `schedule` announces the exact call (`CallScheduled`, with its delay) and
`execute` runs it once the delay has passed; any proposer may `cancel` it meanwhile.
Operations are identified as OpenZeppelin's TimelockController does:
`keccak256(abi.encode(target, value, data, predecessor, salt))`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError

from node_api.kernel.chain import ContractName
from node_api.kernel.errors import ChainError
from oracles.abi_codec import DeployedContracts, describe_error
from oracles.chain import send_transaction

NO_PREDECESSOR = bytes(32)


@dataclass(frozen=True)
class TimelockCall:
    """One call the timelock makes: `function(args)` on the deployed contract `contract`."""

    contract: ContractName
    function: str
    args: Sequence[Any]
    salt: bytes = bytes(32)

    def target(self, contracts: DeployedContracts) -> str:
        return Web3.to_checksum_address(contracts.get(self.contract).address)

    def calldata(self, contracts: DeployedContracts) -> bytes:
        return contracts.get(self.contract).codec.function(self.function).encode(list(self.args))

    def operation_id(self, contracts: DeployedContracts) -> bytes:
        """The TimelockController's id of this operation (`hashOperation`)."""
        encoded = abi_encode(
            ["address", "uint256", "bytes", "bytes32", "bytes32"],
            [self.target(contracts), 0, self.calldata(contracts), NO_PREDECESSOR, self.salt],
        )
        return bytes(keccak(encoded))


def _timelock_send(
    w3: Web3, contracts: DeployedContracts, account: LocalAccount, function: str, args: list[Any]
) -> str:
    timelock = contracts.get(ContractName.NETWORK_TIMELOCK)
    data = timelock.codec.function(function).encode(args)
    to = Web3.to_checksum_address(timelock.address)
    try:  # simulate first: a refusal costs no gas and is named by its custom error
        w3.eth.call({"from": account.address, "to": to, "data": data})
    except (ContractCustomError, ContractLogicError) as error:
        raw = error.data if isinstance(error.data, str) else ""
        revert = bytes.fromhex(raw.removeprefix("0x")) if raw.startswith("0x") else b""
        reason = describe_error(contracts.decode_error(revert), revert)
        raise ChainError(f"timelock {function} refused: {reason}", code="tx_reverted") from None
    receipt = send_transaction(w3, account, {"to": to, "data": data, "gas": 500_000})
    return str(receipt["transactionHash"].to_0x_hex())


def schedule(
    w3: Web3, contracts: DeployedContracts, proposer: LocalAccount, call: TimelockCall, delay_s: int
) -> str:
    """Announce `call` to run after `delay_s` seconds (at least the timelock's minimum)."""
    args = [call.target(contracts), 0, call.calldata(contracts), NO_PREDECESSOR, call.salt, delay_s]
    return _timelock_send(w3, contracts, proposer, "schedule", args)


def execute(
    w3: Web3, contracts: DeployedContracts, executor: LocalAccount, call: TimelockCall
) -> str:
    """Run a scheduled `call` whose delay has passed."""
    args = [call.target(contracts), 0, call.calldata(contracts), NO_PREDECESSOR, call.salt]
    return _timelock_send(w3, contracts, executor, "execute", args)


def cancel(
    w3: Web3, contracts: DeployedContracts, canceller: LocalAccount, call: TimelockCall
) -> str:
    """Withdraw a scheduled `call` before it runs (any proposer may)."""
    return _timelock_send(w3, contracts, canceller, "cancel", [call.operation_id(contracts)])
