"""The fast transaction path: pre-signed raw transactions sent in JSON-RPC batches.

web3's `transact()` manages about 105 tx/s on anvil; signing locally (eth-account
with coincurve), choosing the nonce and gas ourselves and sending raw transactions
in JSON-RPC arrays reaches about 4,000 tx/s (DESIGN.md). The sender keeps its own
nonce counter, so it must be the only writer for its account; the relayer records
every signed transaction before broadcasting it.

Transport failures (refused connection, timeout, HTTP 5xx) raise `RpcUnavailable`,
which callers treat as "back off and retry"; JSON-RPC errors are returned per call.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, TypedDict, cast

import orjson
import requests
import rlp  # type: ignore[import-untyped]
from coincurve import PrivateKey
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak

from node_api.kernel.chain import ContractName
from node_api.kernel.errors import ChainError
from node_api.kernel.money import div_ceil
from oracles.abi_codec import ContractCodec, ErrorArgs, describe_error
from oracles.chain import get_redacted_url
from oracles.compiler import AbiEntry, CompiledContracts

logger = logging.getLogger(__name__)

BATCH_CALLS_MAX: Final = 500
BROADCAST_HEX_CHARS_MAX: Final = 1_000_000
"""Raw transaction hex per `eth_sendRawTransaction` batch at most: anvil refuses a request
of 16 transactions of 535 openings (3.8 MB) as a whole."""
REVERT_ERROR_CODE: Final = 3
PRIORITY_FEE_WEI: Final = 1_000_000_000
DYNAMIC_FEE_TX_TYPE: Final = b"\x02"
BASE_FEE_HEADROOM_FACTOR: Final = 3  # base fee may rise 12.5% a block: room for ~9 full blocks
BPS_DENOMINATOR: Final = 10_000
REPLACEMENT_BUMP_MIN_BPS: Final = 1_000
"""Geth and anvil refuse a same-nonce replacement that does not raise both fees by 10%."""


class RpcUnavailable(ChainError):
    """The RPC endpoint did not answer (connection refused, timeout, HTTP error)."""

    code = "rpc_unavailable"


@dataclass(frozen=True)
class RpcFailure:
    """A JSON-RPC error object returned for one call."""

    code: int
    message: str
    data: bytes

    @property
    def is_revert(self) -> bool:
        return self.code == REVERT_ERROR_CODE or "revert" in self.message.lower()


class RevertDecoder:
    """Names revert data by the compiled ABIs' error entries (selector = the first 4 bytes
    of keccak256 of the error's signature), e.g. a SettlementToken's
    `ERC20InsufficientBalance(sender=0x.., balance=0, needed=1200)`."""

    def __init__(self, abis: Sequence[Sequence[AbiEntry]]) -> None:
        self._codecs = [ContractCodec(abi) for abi in abis]

    @classmethod
    def from_compiled(cls, compiled: CompiledContracts) -> RevertDecoder:
        """Every deployed contract's errors (the ClearingHouse's, the token's ERC-20 ones ...)."""
        return cls([compiled.artifact(name).abi for name in ContractName])

    def decode(self, data: bytes) -> tuple[str, ErrorArgs] | None:
        for codec in self._codecs:
            decoded = codec.decode_error(data)
            if decoded is not None:
                return decoded
        return None

    def describe(self, data: bytes) -> str:
        """`Name(arg=value, ...)`, else the raw selector."""
        return describe_error(self.decode(data), data)


class RpcReceipt(TypedDict):
    """The fields of an `eth_getTransactionReceipt` result the oracles read (hex quantities)."""

    blockNumber: str
    blockHash: str
    status: str
    gasUsed: str


def _parse_error_data(data: Any) -> bytes:
    """Revert data from a JSON-RPC error (a hex string, or nested in an object)."""
    if isinstance(data, dict):
        data = data.get("data") or data.get("result")
    if isinstance(data, str) and data.startswith("0x"):
        try:
            return bytes.fromhex(data[2:])
        except ValueError:
            return b""
    return b""


class JsonRpcClient:
    """A minimal JSON-RPC 2.0 client over HTTP with batch support (one per thread)."""

    def __init__(self, url: str, *, timeout_s: float = 10.0) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self._session = requests.Session()
        self._next_id = 1

    def __repr__(self) -> str:
        return f"JsonRpcClient({get_redacted_url(self.url)})"

    def close(self) -> None:
        self._session.close()

    def _post(self, body: Any) -> Any:
        try:
            response = self._session.post(
                self.url,
                data=orjson.dumps(body),
                headers={"Content-Type": "application/json"},
                timeout=self.timeout_s,
            )
        except (requests.RequestException, OSError) as error:
            raise RpcUnavailable(
                f"chain RPC {get_redacted_url(self.url)} unreachable: {type(error).__name__}"
            ) from None
        if response.status_code >= 500 or response.status_code == 429:
            raise RpcUnavailable(
                f"chain RPC {get_redacted_url(self.url)} answered HTTP {response.status_code}"
            )
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise RpcUnavailable(
                f"chain RPC {get_redacted_url(self.url)} answered non-JSON"
            ) from None

    def call(self, method: str, params: Sequence[Any]) -> Any:
        """One call; a JSON-RPC error raises ChainError carrying the RpcFailure."""
        (result,) = self.batch([(method, params)])
        if isinstance(result, RpcFailure):
            raise ChainError(
                f"{method} failed: {result.message}", code="rpc_error", rpc_code=result.code
            )
        return result

    def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Results in call order; a failed call yields an `RpcFailure` in its place."""
        results: list[Any] = []
        for start in range(0, len(calls), BATCH_CALLS_MAX):
            results.extend(self._batch_chunk(calls[start : start + BATCH_CALLS_MAX]))
        return results

    def _batch_chunk(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        first_id = self._next_id
        self._next_id += len(calls)
        body = [
            {"jsonrpc": "2.0", "id": first_id + offset, "method": method, "params": list(params)}
            for offset, (method, params) in enumerate(calls)
        ]
        answer = self._post(body)
        if not isinstance(answer, list):
            raise RpcUnavailable(f"chain RPC {get_redacted_url(self.url)} refused a batch")
        by_id = {item.get("id"): item for item in answer if isinstance(item, dict)}
        results: list[Any] = []
        for offset in range(len(calls)):
            item = by_id.get(first_id + offset)
            if item is None:
                raise RpcUnavailable(f"chain RPC {get_redacted_url(self.url)} dropped a call")
            error = item.get("error")
            if error is not None:
                results.append(
                    RpcFailure(
                        code=int(error.get("code", 0)),
                        message=str(error.get("message", "")),
                        data=_parse_error_data(error.get("data")),
                    )
                )
            else:
                results.append(item.get("result"))
        return results


@dataclass(frozen=True)
class SignedTx:
    """A signed transaction ready to broadcast: its nonce, hash and raw bytes (0x-hex)."""

    nonce: int
    tx_hash: str
    raw_tx: str


@dataclass(frozen=True)
class FeeQuote:
    """EIP-1559 fees for the next transactions, in wei."""

    max_fee_per_gas_wei: int
    max_priority_fee_per_gas_wei: int


def cap_fees(fees: FeeQuote, ceiling_wei: int) -> FeeQuote:
    """`fees` with the max fee (and the tip under it) at most `ceiling_wei`."""
    max_fee_wei = min(fees.max_fee_per_gas_wei, ceiling_wei)
    return FeeQuote(
        max_fee_per_gas_wei=max_fee_wei,
        max_priority_fee_per_gas_wei=min(fees.max_priority_fee_per_gas_wei, max_fee_wei),
    )


def compute_replacement_fees(
    current: FeeQuote, suggested: FeeQuote, bump_bps: int, ceiling_wei: int
) -> FeeQuote | None:
    """The fees of a same-nonce replacement of a transaction priced at `current`.

    Each fee rises by at least `bump_bps` (rounded up, so the node's replacement minimum
    is met exactly) and to at least today's suggestion; the max fee is capped at
    `ceiling_wei`. None when the cap leaves no valid replacement (the transaction
    already pays the ceiling): it then waits at its price.
    """
    bump_bps = max(bump_bps, REPLACEMENT_BUMP_MIN_BPS)
    max_fee_floor = div_ceil(
        current.max_fee_per_gas_wei * (BPS_DENOMINATOR + bump_bps), BPS_DENOMINATOR
    )
    tip_floor = div_ceil(
        current.max_priority_fee_per_gas_wei * (BPS_DENOMINATOR + bump_bps), BPS_DENOMINATOR
    )
    tip_wei = max(tip_floor, suggested.max_priority_fee_per_gas_wei)
    max_fee_wei = min(max(max_fee_floor, suggested.max_fee_per_gas_wei, tip_wei), ceiling_wei)
    if max_fee_wei < max_fee_floor or max_fee_wei < tip_floor:
        return None
    return FeeQuote(
        max_fee_per_gas_wei=max_fee_wei, max_priority_fee_per_gas_wei=min(tip_wei, max_fee_wei)
    )


@dataclass(frozen=True)
class DynamicFeeCall:
    """The fields of a signed EIP-1559 contract call, decoded from its raw bytes."""

    chain_id: int
    nonce: int
    fees: FeeQuote
    gas: int
    to: str
    data: bytes


def decode_dynamic_fee_call(raw_tx: str) -> DynamicFeeCall:
    """Read back a raw type-2 transaction (0x-hex) signed by `sign_dynamic_fee_call`."""
    raw = bytes.fromhex(raw_tx.removeprefix("0x"))
    if raw[:1] != DYNAMIC_FEE_TX_TYPE:
        raise ChainError("not an EIP-1559 transaction", code="tx_type_unsupported")
    fields = rlp.decode(raw[1:])
    chain_id, nonce, tip, max_fee, gas = (int.from_bytes(f, "big") for f in fields[:5])
    return DynamicFeeCall(
        chain_id=chain_id,
        nonce=nonce,
        fees=FeeQuote(max_fee_per_gas_wei=max_fee, max_priority_fee_per_gas_wei=tip),
        gas=gas,
        to="0x" + bytes(fields[5]).hex(),
        data=bytes(fields[7]),
    )


class BroadcastOutcome(StrEnum):
    """What the node said to one raw transaction."""

    ACCEPTED = "accepted"
    NONCE_TOO_LOW = "nonce_too_low"
    REJECTED = "rejected"


@dataclass(frozen=True)
class BroadcastResult:
    outcome: BroadcastOutcome
    message: str = ""


def classify_broadcast(result: Any) -> BroadcastResult:
    """Map a `eth_sendRawTransaction` result to an outcome ("already known" is accepted)."""
    if not isinstance(result, RpcFailure):
        return BroadcastResult(BroadcastOutcome.ACCEPTED)
    message = result.message.lower()
    if (
        "already known" in message
        or "already imported" in message
        or "known transaction" in message
    ):
        return BroadcastResult(BroadcastOutcome.ACCEPTED, result.message)
    if "nonce too low" in message or "nonce is too low" in message:
        return BroadcastResult(BroadcastOutcome.NONCE_TOO_LOW, result.message)
    return BroadcastResult(BroadcastOutcome.REJECTED, result.message)


def sign_dynamic_fee_call(
    key: PrivateKey, chain_id: int, nonce: int, to: str, data: bytes, gas: int, fees: FeeQuote
) -> tuple[bytes, bytes]:
    """An EIP-1559 (type 2) transaction calling `to`, signed: (raw bytes, hash).

    Byte for byte what eth-account's `sign_transaction` produces (RFC 6979 signatures
    are deterministic), without its per-call validation of a transaction dict, which
    costs three times the signature itself.
    """
    fields = [
        chain_id,
        nonce,
        fees.max_priority_fee_per_gas_wei,
        fees.max_fee_per_gas_wei,
        gas,
        bytes.fromhex(to.removeprefix("0x")),
        0,
        data,
        [],
    ]
    unsigned = DYNAMIC_FEE_TX_TYPE + rlp.encode(fields)
    signature = key.sign_recoverable(keccak(unsigned), hasher=None)
    r_value = int.from_bytes(signature[:32], "big")
    s_value = int.from_bytes(signature[32:64], "big")
    raw = DYNAMIC_FEE_TX_TYPE + rlp.encode([*fields, signature[64], r_value, s_value])
    return raw, keccak(raw)


def compute_size_chunks(raw_txs: Sequence[str], chars_max: int) -> list[list[str]]:
    """Consecutive groups of `raw_txs` of at most `chars_max` characters each (a longer
    transaction alone)."""
    chunks: list[list[str]] = []
    size = 0
    for raw in raw_txs:
        if not chunks or size + len(raw) > chars_max:
            chunks.append([])
            size = 0
        chunks[-1].append(raw)
        size += len(raw)
    return chunks


class TxSender:
    """Signs contract calls for one account with a local nonce counter and sends them raw."""

    def __init__(self, rpc: JsonRpcClient, account: LocalAccount, chain_id: int) -> None:
        self.rpc = rpc
        self._account = account
        self._signing_key = PrivateKey(bytes(account.key))
        self.chain_id = chain_id
        self._next_nonce: int | None = None

    def __repr__(self) -> str:
        return f"TxSender({self.address}, chain {self.chain_id})"

    @property
    def address(self) -> str:
        return str(self._account.address)

    def sync_nonce(self, floor: int = 0) -> int:
        """Set the next nonce to max(the node's pending count, `floor`) and return it.

        `floor` is one past the highest nonce the caller already recorded, so a
        transaction recorded but never broadcast keeps its nonce.
        """
        pending = int(self.rpc.call("eth_getTransactionCount", [self.address, "pending"]), 16)
        self._next_nonce = max(pending, floor)
        return self._next_nonce

    def fetch_fees(self) -> FeeQuote:
        """Fees from the latest block's base fee, with headroom for rising base fees."""
        block = self.rpc.call("eth_getBlockByNumber", ["latest", False])
        base_fee_wei = int(block.get("baseFeePerGas") or "0x0", 16)
        return FeeQuote(
            max_fee_per_gas_wei=BASE_FEE_HEADROOM_FACTOR * base_fee_wei + PRIORITY_FEE_WEI,
            max_priority_fee_per_gas_wei=PRIORITY_FEE_WEI,
        )

    def sign_call(self, to: str, data: bytes, gas: int, fees: FeeQuote) -> SignedTx:
        """Sign a call of `to` with the next nonce (the counter advances)."""
        if self._next_nonce is None:
            raise ChainError("sync_nonce() before signing", code="nonce_unsynced")
        nonce = self._next_nonce
        raw, tx_hash = sign_dynamic_fee_call(
            self._signing_key, self.chain_id, nonce, to, data, gas, fees
        )
        self._next_nonce = nonce + 1
        return SignedTx(nonce=nonce, tx_hash="0x" + tx_hash.hex(), raw_tx="0x" + raw.hex())

    def sign_replacement(self, raw_tx: str, fees: FeeQuote) -> SignedTx:
        """The same call with the same nonce at new fees (the nonce counter does not move)."""
        call = decode_dynamic_fee_call(raw_tx)
        if call.chain_id != self.chain_id:
            raise ChainError("replacement on another chain", code="tx_chain_mismatch")
        raw, tx_hash = sign_dynamic_fee_call(
            self._signing_key, self.chain_id, call.nonce, call.to, call.data, call.gas, fees
        )
        return SignedTx(nonce=call.nonce, tx_hash="0x" + tx_hash.hex(), raw_tx="0x" + raw.hex())

    def broadcast(
        self, raw_txs: Sequence[str], rpc: JsonRpcClient | None = None
    ) -> list[BroadcastResult]:
        """Send raw transactions in JSON-RPC batches of at most `BROADCAST_HEX_CHARS_MAX`
        characters (one transaction at least), in order; one outcome per transaction.
        `rpc`: another client to the same node (a client serves one thread)."""
        client = rpc or self.rpc
        results: list[Any] = []
        for chunk in compute_size_chunks(raw_txs, BROADCAST_HEX_CHARS_MAX):
            results.extend(client.batch([("eth_sendRawTransaction", [raw]) for raw in chunk]))
        return [classify_broadcast(result) for result in results]

    def fetch_receipts(self, tx_hashes: Sequence[str]) -> list[RpcReceipt | None]:
        """Receipts in order (None while not mined)."""
        results = self.rpc.batch([("eth_getTransactionReceipt", [h]) for h in tx_hashes])
        return [
            cast(RpcReceipt, result) if isinstance(result, dict) else None for result in results
        ]

    def fetch_receipts_and_head(
        self, tx_hashes: Sequence[str]
    ) -> tuple[list[RpcReceipt | None], int]:
        """Receipts in order (None while not mined) and the head's block number, in one
        JSON-RPC batch; the head is asked last, so it is at least every receipt's block
        when the node answers in order (and a receipt above it only waits a step)."""
        calls = [("eth_getTransactionReceipt", [h]) for h in tx_hashes]
        *results, head = self.rpc.batch([*calls, ("eth_blockNumber", [])])
        if isinstance(head, RpcFailure):
            raise ChainError(
                f"eth_blockNumber failed: {head.message}", code="rpc_error", rpc_code=head.code
            )
        receipts = [cast(RpcReceipt, r) if isinstance(r, dict) else None for r in results]
        return receipts, int(head, 16)

    def fetch_known(self, tx_hashes: Sequence[str]) -> list[bool]:
        """Whether the node knows each transaction (mined or in its pool)."""
        results = self.rpc.batch([("eth_getTransactionByHash", [h]) for h in tx_hashes])
        return [isinstance(result, dict) for result in results]

    def fetch_block_number(self) -> int:
        return int(self.rpc.call("eth_blockNumber", []), 16)

    def fetch_block_gas_limit(self) -> int:
        """The latest block's gas limit: no transaction may ask for more."""
        block = self.rpc.call("eth_getBlockByNumber", ["latest", False])
        return int(block["gasLimit"], 16)

    def fetch_block_timestamp(self) -> int:
        """The latest block's timestamp (unix seconds): the time contracts see."""
        block = self.rpc.call("eth_getBlockByNumber", ["latest", False])
        return int(block["timestamp"], 16)

    def call_many(self, calls: Sequence[tuple[str, bytes]]) -> list[bytes | RpcFailure]:
        """`eth_call` each (to, data) from this account at the latest block, in one batch."""
        results = self.rpc.batch(
            [
                (
                    "eth_call",
                    [{"from": self.address, "to": to, "data": "0x" + data.hex()}, "latest"],
                )
                for to, data in calls
            ]
        )
        return [
            result if isinstance(result, RpcFailure) else bytes.fromhex(str(result)[2:])
            for result in results
        ]
