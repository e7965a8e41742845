"""The indexer: follows the contracts' events into the books, exactly once, across reorgs.

It starts at the deploy block, keeps a checkpoint (last block number and hash whose
events are stored), and only reads blocks at least `confirmations` below the head.
Each step reads one range of blocks and stores it in one transaction. Before it
stores a range it checks that the range's first block's parent is the checkpoint
block (else the chain reorganized: it walks its stored block hashes down to the
highest one the chain still has, rolls back everything above it and re-reads),
and that the range's last block did not change while the logs were read (else it
retries the step). Events are unique by (block hash, log index).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from node_api.kernel.db import Database
from node_api.kernel.errors import ChainError
from oracles.abi_codec import DeployedContract, DeployedContracts
from oracles.chain import RpcLog, RpcLogFilter
from oracles.chain_mirror import get_subject
from oracles.event_store import BlockRef, EventStore, StoredEvent
from oracles.tx_sender import JsonRpcClient, RpcFailure

logger = logging.getLogger(__name__)

FOLLOWED_CONTRACTS: Final = ("CreditRegistry", "ClearingHouse", "OracleQuorum")
FORK_SEARCH_PAGE: Final = 64
PRUNE_EVERY_RANGES: Final = 100


@dataclass(frozen=True)
class IndexerConfig:
    """How far behind the head the indexer stays and how much it reads per step."""

    confirmations: int = 0
    range_max_blocks: int = 500
    keep_block_hashes: int = 10_000
    """Reorgs deeper than this many blocks cannot be rolled back."""
    follow: tuple[str, ...] = FOLLOWED_CONTRACTS


def _header(value: Any, number: int) -> BlockRef:
    if not isinstance(value, dict):
        raise ChainError(f"block {number} unavailable", code="block_unavailable")
    return BlockRef(int(value["number"], 16), str(value["hash"]), str(value["parentHash"]))


class Indexer:
    """Reads contract events from the chain into the event store and the mirror."""

    def __init__(
        self,
        database: Database,
        rpc: JsonRpcClient,
        contracts: DeployedContracts,
        config: IndexerConfig | None = None,
        *,
        name: str = "main",
    ) -> None:
        self.store = EventStore(database, name)
        self.rpc = rpc
        self.config = config or IndexerConfig()
        followed = [contracts.get(contract_name) for contract_name in self.config.follow]
        self._by_address: dict[str, DeployedContract] = {c.address.lower(): c for c in followed}
        self._start_block = min(c.deploy_block for c in followed)
        self.reorgs_handled = 0
        self._range_blocks = self.config.range_max_blocks
        self._ranges_stored = 0

    def step(self) -> bool:
        """Read and store one range (or handle a reorg). False when caught up."""
        checkpoint = self.store.fetch_checkpoint() or self._initial_checkpoint()
        head = int(self.rpc.call("eth_blockNumber", []), 16)
        safe = head - self.config.confirmations
        if safe <= checkpoint.number:
            return self._check_tip(checkpoint)
        last = min(safe, checkpoint.number + self._range_blocks)
        first_block, last_block, logs = self.rpc.batch(
            [
                ("eth_getBlockByNumber", [hex(checkpoint.number + 1), False]),
                ("eth_getBlockByNumber", [hex(last), False]),
                ("eth_getLogs", [self._log_filter(checkpoint.number + 1, last)]),
            ]
        )
        if isinstance(logs, RpcFailure):
            return self._shrink_range(logs)
        first, end = _header(first_block, checkpoint.number + 1), _header(last_block, last)
        if first.parent_hash != checkpoint.hash:
            self._handle_reorg(checkpoint)
            return True
        (recheck,) = self.rpc.batch([("eth_getBlockByNumber", [hex(last), False])])
        if _header(recheck, last).hash != end.hash:
            return True  # the chain moved under the read: read the range again
        events, blocks = self._decode(logs)
        self.store.store_range(events, [*blocks, end], end)
        self._range_blocks = min(self._range_blocks * 2, self.config.range_max_blocks)
        self._ranges_stored += 1
        if self._ranges_stored % PRUNE_EVERY_RANGES == 0:
            self.store.prune_blocks(end.number - self.config.keep_block_hashes)
        return True

    def run_until_caught_up(self, timeout_s: float) -> None:
        """Step until the checkpoint reaches the safe head (tests and benchmarks)."""
        deadline = time.monotonic() + timeout_s
        while self.step():
            if time.monotonic() > deadline:
                raise TimeoutError(f"indexer not caught up after {timeout_s} s")

    def _shrink_range(self, failure: RpcFailure) -> bool:
        """Halve the range after a refused eth_getLogs (providers cap results per call)."""
        if self._range_blocks == 1:
            raise ChainError(f"eth_getLogs failed: {failure.message}", code="rpc_error")
        self._range_blocks = max(1, self._range_blocks // 2)
        logger.info("log range shrunk", extra={"range_blocks": self._range_blocks})
        return True

    def _log_filter(self, from_block: int, to_block: int) -> RpcLogFilter:
        return {
            "fromBlock": hex(from_block),
            "toBlock": hex(to_block),
            "address": [contract.address for contract in self._by_address.values()],
        }

    def _initial_checkpoint(self) -> BlockRef:
        """The block before the first deployment: nothing of ours happened up to it."""
        number = max(self._start_block - 1, 0)
        (value,) = self.rpc.batch([("eth_getBlockByNumber", [hex(number), False])])
        return _header(value, number)

    def _check_tip(self, checkpoint: BlockRef) -> bool:
        """When caught up, make sure the checkpoint block is still on the chain."""
        (value,) = self.rpc.batch([("eth_getBlockByNumber", [hex(checkpoint.number), False])])
        if isinstance(value, dict) and value["hash"] == checkpoint.hash:
            return False
        if self.store.fetch_checkpoint() is None:
            return False  # nothing stored yet, so nothing to roll back
        self._handle_reorg(checkpoint)
        return True

    def _decode(self, logs: Sequence[RpcLog]) -> tuple[list[StoredEvent], list[BlockRef]]:
        events: list[StoredEvent] = []
        blocks: dict[int, BlockRef] = {}
        for log in logs:
            contract = self._by_address.get(str(log["address"]).lower())
            topics = [bytes.fromhex(topic[2:]) for topic in log["topics"]]
            codec = contract.codec.events.get(topics[0]) if contract and topics else None
            if contract is None or codec is None:
                continue
            args = codec.decode(topics, bytes.fromhex(log["data"][2:]))
            number = int(log["blockNumber"], 16)
            blocks[number] = BlockRef(number, log["blockHash"], "")
            events.append(
                StoredEvent(
                    block_number=number,
                    block_hash=log["blockHash"],
                    log_index=int(log["logIndex"], 16),
                    tx_hash=log["transactionHash"],
                    contract=contract.name,
                    event=codec.name,
                    subject=get_subject(contract.name, codec.name, args),
                    args=args,
                )
            )
        return events, list(blocks.values())

    def _handle_reorg(self, checkpoint: BlockRef) -> None:
        """Roll back to the highest stored block the chain still has."""
        anchor = self._find_fork_base(checkpoint.number)
        removed = self.store.rollback_above(anchor)
        self.reorgs_handled += 1
        logger.warning(
            "chain reorganized",
            extra={"from_block": checkpoint.number, "fork_base": anchor.number, "removed": removed},
        )

    def _find_fork_base(self, at_or_below: int) -> BlockRef:
        while True:
            stored = self.store.fetch_recent_blocks(at_or_below, FORK_SEARCH_PAGE)
            if not stored:
                return self._initial_checkpoint()
            answers = self.rpc.batch(
                [("eth_getBlockByNumber", [hex(ref.number), False]) for ref in stored]
            )
            for ref, answer in zip(stored, answers, strict=True):
                if isinstance(answer, dict) and answer["hash"] == ref.hash:
                    return ref
            at_or_below = stored[-1].number - 1


def fetch_indexer_checkpoint(database: Database, name: str = "main") -> BlockRef | None:
    """The last block the named indexer stored (for status and lag)."""
    return EventStore(database, name).fetch_checkpoint()
