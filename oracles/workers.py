"""Background workers: the relayer and indexer loops, with backoff and a clean stop.

`creditnet up` runs each under its worker lease (`node_api/runtime/background.py`:
`run_step_loop(name, relayer.step, term_stop)` per term, the relayer built with the
lease's fence, plus a second relayer for the lender's treasury when one is configured:
it sends the funding kinds, whose tokens the ClearingHouse pulls from the sender);
`creditnet relayer` and `creditnet indexer` run theirs under the same leases
(`node_api.runtime.background.start_oracle_workers`), so they may run beside nodes. A loop
calls its `step()` until told to stop: immediately again while there is work, after
`idle_s` when there is none, and with exponential backoff (capped) while the chain
RPC or the database fails, so an outage never kills the worker.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from eth_account.signers.local import LocalAccount
from sqlalchemy.exc import OperationalError

from node_api.kernel.config import Settings
from node_api.kernel.db import Database, WriteFence
from node_api.kernel.errors import ChainError
from oracles.abi_codec import DeployedContracts
from oracles.compiler import CompiledContracts
from oracles.indexer import Indexer, IndexerConfig
from oracles.leases import LeaseLost
from oracles.manifest import Manifest
from oracles.relay_kinds import RelayAccount
from oracles.relayer import GWEI, Relayer, RelayerConfig
from oracles.tx_sender import JsonRpcClient, TxSender

logger = logging.getLogger(__name__)

BACKOFF_INITIAL_S: Final = 0.2
BACKOFF_MAX_S: Final = 10.0
STOP_TIMEOUT_S: Final = 15.0
TRANSIENT_ERRORS: Final = (
    ChainError,
    OperationalError,
    TimeoutError,
    ConnectionError,
    LeaseLost,
)


@dataclass
class LoopStats:
    """What a step loop has done: steps completed, failures and the last one."""

    steps: int = 0
    errors: int = 0
    last_error: str | None = None


def run_step_loop(
    name: str,
    step: Callable[[], bool],
    stop: threading.Event,
    *,
    stats: LoopStats | None = None,
    idle_s: float = 0.2,
    backoff_initial_s: float = BACKOFF_INITIAL_S,
    backoff_max_s: float = BACKOFF_MAX_S,
) -> None:
    """Call `step` until `stop` is set, in the caller's thread.

    Again at once while it reports work, after `idle_s` when it does not, and after an
    exponentially growing pause (capped) when it raises: an outage or a bug is logged
    and retried, never fatal.
    """
    stats = stats if stats is not None else LoopStats()
    backoff_s = backoff_initial_s
    while not stop.is_set():
        try:
            worked = step()
        except Exception as error:  # logged with its kind; the loop must survive it
            stats.errors += 1
            stats.last_error = f"{type(error).__name__}: {error}"
            log = logger.warning if isinstance(error, TRANSIENT_ERRORS) else logger.exception
            log("worker step failed", extra={"worker": name, "retry_in_s": backoff_s})
            stop.wait(backoff_s)
            backoff_s = min(backoff_s * 2, backoff_max_s)
            continue
        stats.steps += 1
        backoff_s = backoff_initial_s
        if not worked:
            stop.wait(idle_s)


class WorkerLoop(threading.Thread):
    """`run_step_loop` in a daemon thread of its own, until `stop()`."""

    def __init__(
        self,
        name: str,
        step: Callable[[], bool],
        *,
        idle_s: float = 0.2,
        backoff_initial_s: float = BACKOFF_INITIAL_S,
        backoff_max_s: float = BACKOFF_MAX_S,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self._step = step
        self.idle_s = idle_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self._stopping = threading.Event()
        self.stats = LoopStats()

    @property
    def steps(self) -> int:
        return self.stats.steps

    @property
    def errors(self) -> int:
        return self.stats.errors

    @property
    def last_error(self) -> str | None:
        return self.stats.last_error

    def run(self) -> None:
        run_step_loop(
            self.name,
            self._step,
            self._stopping,
            stats=self.stats,
            idle_s=self.idle_s,
            backoff_initial_s=self.backoff_initial_s,
            backoff_max_s=self.backoff_max_s,
        )

    def request_stop(self) -> None:
        """Ask the loop to stop after its current step, without waiting."""
        self._stopping.set()

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Ask the loop to stop after its current step and wait for it."""
        self._stopping.set()
        if self.is_alive():
            self.join(timeout_s)


@dataclass(frozen=True)
class OracleContext:
    """What the oracle workers need to reach the chain and the books."""

    database: Database
    rpc_url: str
    chain_id: int
    contracts: DeployedContracts
    confirmations: int = 0
    relayer_config: RelayerConfig | None = None
    """How the relayers batch, wait and re-price (default: `RelayerConfig` with
    `confirmations`)."""

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        database: Database,
        rpc_url: str,
        manifest: Manifest,
        compiled: CompiledContracts,
    ) -> OracleContext:
        return cls(
            database=database,
            rpc_url=rpc_url,
            chain_id=manifest.chain_id,
            contracts=DeployedContracts.from_manifest(manifest, compiled),
            confirmations=settings.confirmations,
            relayer_config=RelayerConfig(
                confirmations=settings.confirmations,
                reprice_after_s=settings.relayer_reprice_after_s,
                reprice_bump_bps=settings.relayer_reprice_bump_bps,
                fee_ceiling_wei=settings.relayer_fee_ceiling_gwei * GWEI,
            ),
        )


def build_relayer(
    context: OracleContext,
    account: LocalAccount,
    config: RelayerConfig | None = None,
    *,
    role: RelayAccount = RelayAccount.RELAYER,
    fence: WriteFence | None = None,
) -> Relayer:
    """A relayer with its own RPC session (one per thread), sending the kinds of `role`;
    with a `fence`, each of its writes first checks this node still holds its lease."""
    sender = TxSender(JsonRpcClient(context.rpc_url), account, context.chain_id)
    config = config or context.relayer_config or RelayerConfig(confirmations=context.confirmations)
    return Relayer(context.database, sender, context.contracts, config, account=role, fence=fence)


def build_indexer(context: OracleContext, config: IndexerConfig | None = None) -> Indexer:
    """An indexer with its own RPC session (one per thread)."""
    config = config or IndexerConfig(confirmations=context.confirmations)
    return Indexer(context.database, JsonRpcClient(context.rpc_url), context.contracts, config)
