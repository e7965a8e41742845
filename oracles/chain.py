"""The chain client: connect to an EVM JSON-RPC node, the dev accounts, one signed send,
and the shapes of the JSON-RPC results the indexer and the audit read.

Transactions are always signed here, locally, from an eth-account `LocalAccount`
and sent raw: the node never holds keys, so the same code works on anvil, a
Besu/Geth consortium chain or an L2. Keys and the mnemonic never appear in logs,
messages or reprs.
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Final, TypedDict, cast
from urllib.parse import urlsplit, urlunsplit

import requests
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_account.types import TransactionDictType
from web3 import HTTPProvider, Web3
from web3.exceptions import ContractLogicError, TimeExhausted, Web3RPCError
from web3.types import TxParams, TxReceipt, Wei

from node_api.kernel.errors import ChainError, CreditNetValueError

logger = logging.getLogger(__name__)

# Anvil's (and Hardhat's) well-known development mnemonic. The accounts it yields
# are public test accounts: never fund them on a real network.
ANVIL_MNEMONIC: Final = "test test test test test test test test test test test junk"
DERIVATION_PATH: Final = "m/44'/60'/0'/0/{index}"
DEPLOYER_INDEX: Final = 0
RELAYER_INDEX: Final = 1
FIRST_SIGNER_INDEX: Final = 2
GAS_HEADROOM_DIVISOR: Final = 5  # 20% above the estimate: state may move before mining.
RECEIPT_TIMEOUT_S: Final = 30.0


class RpcLog(TypedDict):
    """A log as `eth_getLogs` returns it (numbers as 0x-hex quantities)."""

    address: str
    topics: list[str]
    data: str
    blockNumber: str
    blockHash: str
    logIndex: str
    transactionHash: str


class RpcLogFilter(TypedDict):
    """The filter object of `eth_getLogs`."""

    fromBlock: str
    toBlock: str
    address: list[str]


class RpcBlock(TypedDict):
    """A block header as `eth_getBlockByNumber(n, false)` returns it (the fields read)."""

    number: str
    hash: str
    parentHash: str


RpcTransaction = TypedDict(
    "RpcTransaction", {"hash": str, "from": str, "to": str | None, "input": str}
)
"""A transaction as `eth_getTransactionByHash` returns it (the fields read)."""


class RpcReceipt(TypedDict):
    """A receipt as `eth_getTransactionReceipt` returns it (the fields read)."""

    status: str
    blockNumber: str
    contractAddress: str | None


def get_redacted_url(rpc_url: str) -> str:
    """`rpc_url` without user info or query string, which may carry credentials."""
    parts = urlsplit(rpc_url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def connect(rpc_url: str, timeout_s: float = 5.0) -> Web3:
    """A Web3 client for `rpc_url`, after checking that the node answers `eth_chainId`.

    The check uses no retries so a dead node fails fast, in one line:
    ChainError "chain RPC <url> unreachable".
    """
    request_kwargs = {"timeout": timeout_s}
    probe = Web3(
        HTTPProvider(rpc_url, request_kwargs=request_kwargs, exception_retry_configuration=None)
    )
    try:
        probe.eth.chain_id  # noqa: B018 - the call is the reachability check
    except (requests.RequestException, OSError, Web3RPCError, ValueError):
        raise ChainError(f"chain RPC {get_redacted_url(rpc_url)} unreachable") from None
    return Web3(HTTPProvider(rpc_url, request_kwargs=request_kwargs))


@cache
def _derive_account(mnemonic: str, index: int) -> LocalAccount:
    Account.enable_unaudited_hdwallet_features()
    account: LocalAccount = Account.from_mnemonic(
        mnemonic, account_path=DERIVATION_PATH.format(index=index)
    )
    return account


class LocalAccounts:
    """Accounts derived from a BIP-39 mnemonic (default: anvil's dev accounts).

    Account 0 deploys and administers, account 1 relays, accounts 2.. sign
    settlement cycles in development.
    """

    def __init__(self, mnemonic: str = ANVIL_MNEMONIC) -> None:
        self._mnemonic = mnemonic

    def __repr__(self) -> str:
        return "LocalAccounts(<mnemonic hidden>)"

    def account(self, index: int) -> LocalAccount:
        """The account at derivation index `index`."""
        if index < 0:
            raise CreditNetValueError("account index must be >= 0", field="index")
        return _derive_account(self._mnemonic, index)

    @property
    def deployer(self) -> LocalAccount:
        return self.account(DEPLOYER_INDEX)

    @property
    def relayer(self) -> LocalAccount:
        return self.account(RELAYER_INDEX)

    def signers(self, count: int) -> list[LocalAccount]:
        """`count` oracle signer accounts, from index 2 on."""
        return [self.account(FIRST_SIGNER_INDEX + offset) for offset in range(count)]


def _estimate_gas(w3: Web3, tx: TxParams) -> int:
    """The gas estimate plus headroom (floor of 20%), or ChainError when the call reverts."""
    try:
        estimate = w3.eth.estimate_gas(tx)
    except ContractLogicError as error:
        raise ChainError(
            f"transaction would revert: {error.message}", code="tx_reverted", revert_data=error.data
        ) from None
    return estimate + estimate // GAS_HEADROOM_DIVISOR


def _fill_fees(w3: Web3, tx: TxParams) -> None:
    """EIP-1559 fees when the chain has a base fee, else a legacy gas price."""
    if any(key in tx for key in ("gasPrice", "maxFeePerGas")):
        return
    base_fee_wei = w3.eth.get_block("latest").get("baseFeePerGas")
    if base_fee_wei is None:
        tx["gasPrice"] = w3.eth.gas_price
        return
    priority_fee_wei = w3.eth.max_priority_fee
    tx["maxPriorityFeePerGas"] = priority_fee_wei
    tx["maxFeePerGas"] = Wei(2 * base_fee_wei + priority_fee_wei)


def send_transaction(
    w3: Web3, account: LocalAccount, tx: TxParams, *, timeout_s: float = RECEIPT_TIMEOUT_S
) -> TxReceipt:
    """Sign `tx` locally with `account`, send it raw and return the successful receipt.

    Fills what is missing: chain id, the pending nonce, gas (estimate + 20%) and fees.
    Raises ChainError (code `tx_reverted`) when it would revert or did revert.
    """
    params: TxParams = {**tx, "from": account.address}
    params.setdefault("chainId", w3.eth.chain_id)
    params.setdefault("nonce", w3.eth.get_transaction_count(account.address, "pending"))
    if "gas" not in params:
        params["gas"] = _estimate_gas(w3, params)
    _fill_fees(w3, params)
    signed = account.sign_transaction(cast(TransactionDictType, params))
    try:
        tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    except Web3RPCError as error:
        raise ChainError(f"transaction rejected: {error.message}", code="tx_rejected") from None
    try:
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout_s)
    except TimeExhausted:
        raise ChainError(
            f"transaction {tx_hash.to_0x_hex()} not mined within {timeout_s} s", code="tx_timeout"
        ) from None
    if receipt["status"] != 1:
        raise ChainError(f"transaction {tx_hash.to_0x_hex()} reverted", code="tx_reverted")
    return receipt
