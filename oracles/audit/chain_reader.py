"""The auditor's only window on the chain: JSON-RPC reads pinned at one block.

Every view call and every log read stops at the same block (the head when the audit
started, minus the confirmations asked for), so the replayed history and the state it
is compared with describe the same moment, even while the chain keeps moving. Reads go
out in JSON-RPC batches; a log range the provider refuses is split in halves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, cast

from node_api.kernel.errors import ChainError
from oracles.chain import RpcBlock, RpcLog, RpcReceipt, RpcTransaction
from oracles.tx_sender import JsonRpcClient, RpcFailure

LOG_RANGE_BLOCKS: Final = 2_000
LOG_RANGES_PER_BATCH: Final = 8

ProgressFn = Callable[[int], None]
"""Called with the number of blocks just read (drives the progress bar)."""


@dataclass(frozen=True)
class RawLog:
    """One log as the RPC returned it, with the fields the audit uses."""

    address: str
    topics: tuple[bytes, ...]
    data: bytes
    block_number: int
    log_index: int
    tx_hash: str
    block_timestamp: int | None = None
    """Unix seconds of the log's block, when the node includes `blockTimestamp` in logs."""


def _parse_log(item: RpcLog) -> RawLog:
    timestamp = cast("dict[str, object]", item).get("blockTimestamp")
    return RawLog(
        address=str(item["address"]).lower(),
        topics=tuple(bytes.fromhex(topic[2:]) for topic in item["topics"]),
        data=bytes.fromhex(str(item["data"])[2:]),
        block_number=int(item["blockNumber"], 16),
        log_index=int(item["logIndex"], 16),
        tx_hash=str(item["transactionHash"]),
        block_timestamp=int(timestamp, 16) if isinstance(timestamp, str) else None,
    )


class ChainReader:
    """Batched reads at a pinned block (`pinned_block`); set by `pin_head`."""

    def __init__(self, rpc: JsonRpcClient) -> None:
        self.rpc = rpc
        self.pinned_block = 0
        self.pinned_hash = ""

    def fetch_chain_id(self) -> int:
        return int(self.rpc.call("eth_chainId", []), 16)

    def pin_head(self, confirmations: int = 0) -> int:
        """Fix the block every later read stops at: head - confirmations."""
        head = int(self.rpc.call("eth_blockNumber", []), 16)
        self.pinned_block = max(0, head - confirmations)
        block = self.fetch_block(self.pinned_block)
        self.pinned_hash = str(block["hash"])
        return self.pinned_block

    def fetch_block(self, number: int) -> RpcBlock:
        block: RpcBlock | None = self.rpc.call("eth_getBlockByNumber", [hex(number), False])
        if not isinstance(block, dict):
            raise ChainError(f"block {number} unavailable", code="block_unavailable")
        return block

    def fetch_block_timestamps(self, numbers: Sequence[int]) -> dict[int, int]:
        """Unix seconds of each distinct block, in one batch (a block the node does not
        return is left out)."""
        unique = sorted(set(numbers))
        results = self.rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in unique])
        return {
            number: int(str(result["timestamp"]), 16)
            for number, result in zip(unique, results, strict=True)
            if isinstance(result, dict) and "timestamp" in result
        }

    def fetch_code(self, address: str) -> bytes:
        code = self.rpc.call("eth_getCode", [address, hex(self.pinned_block)])
        return bytes.fromhex(str(code)[2:])

    def fetch_transactions(self, tx_hashes: Sequence[str]) -> dict[str, RpcTransaction | None]:
        """Transactions by hash (None for one the node does not know)."""
        found = self._fetch_by_hash("eth_getTransactionByHash", tx_hashes)
        return {tx_hash: cast("RpcTransaction | None", item) for tx_hash, item in found.items()}

    def fetch_receipts(self, tx_hashes: Sequence[str]) -> dict[str, RpcReceipt | None]:
        """Receipts by transaction hash (None for one the node does not know)."""
        found = self._fetch_by_hash("eth_getTransactionReceipt", tx_hashes)
        return {tx_hash: cast("RpcReceipt | None", item) for tx_hash, item in found.items()}

    def _fetch_by_hash(self, method: str, tx_hashes: Sequence[str]) -> dict[str, object]:
        """`method` for each distinct hash in one batch: the JSON object, else None."""
        unique = list(dict.fromkeys(tx_hashes))
        results = self.rpc.batch([(method, [h]) for h in unique])
        return {
            tx_hash: result if isinstance(result, dict) else None
            for tx_hash, result in zip(unique, results, strict=True)
        }

    def call_many(
        self, calls: Sequence[tuple[str, bytes]], block: int | None = None
    ) -> list[bytes | RpcFailure]:
        """`eth_call` of each (to, data) at the pinned block (or `block`), in batches."""
        tag = hex(self.pinned_block if block is None else block)
        results = self.rpc.batch(
            [("eth_call", [{"to": to, "data": "0x" + data.hex()}, tag]) for to, data in calls]
        )
        return [
            result if isinstance(result, RpcFailure) else bytes.fromhex(str(result)[2:])
            for result in results
        ]

    def fetch_logs(
        self, addresses: Sequence[str], from_block: int, progress: ProgressFn | None = None
    ) -> list[RawLog]:
        """Every log of `addresses` from `from_block` to the pinned block, in chain order."""
        logs: list[RawLog] = []
        pending = [
            (start, min(start + LOG_RANGE_BLOCKS - 1, self.pinned_block))
            for start in range(from_block, self.pinned_block + 1, LOG_RANGE_BLOCKS)
        ]
        while pending:
            ranges, pending = pending[:LOG_RANGES_PER_BATCH], pending[LOG_RANGES_PER_BATCH:]
            results = self.rpc.batch(
                [
                    (
                        "eth_getLogs",
                        [{"address": list(addresses), "fromBlock": hex(a), "toBlock": hex(b)}],
                    )
                    for a, b in ranges
                ]
            )
            retry: list[tuple[int, int]] = []
            for (first, last), result in zip(ranges, results, strict=True):
                if isinstance(result, RpcFailure):
                    retry.extend(_split_range(first, last, result))
                    continue
                logs.extend(_parse_log(item) for item in result)
                if progress is not None:
                    progress(last - first + 1)
            pending = retry + pending
        logs.sort(key=lambda log: (log.block_number, log.log_index))
        return logs


def _split_range(first: int, last: int, failure: RpcFailure) -> list[tuple[int, int]]:
    """Halve a refused range (providers cap results per call); a single block is fatal."""
    if first == last:
        raise ChainError(f"eth_getLogs refused block {first}: {failure.message}", code="rpc_error")
    middle = (first + last) // 2
    return [(first, middle), (middle + 1, last)]
