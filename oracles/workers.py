"""Background workers: the relayer and indexer loops, with backoff and a clean stop.

`creditnet up` runs each under its worker lease (`node_api/runtime/background.py`:
`run_step_loop(name, relayer.step, term_stop)` per term, the relayer built with the
lease's fence, plus a second relayer for the lender's treasury when one is configured:
it sends the funding kinds, whose tokens the ClearingHouse pulls from the sender);
`creditnet relayer` and `creditnet indexer` run one alone, without a lease
(`start_oracle_workers`, `run_until_signalled`): never beside a node on the same
database. A loop calls
its `step()` until told to stop: immediately again while there is work, after
`idle_s` when there is none, and with exponential backoff (capped) while the chain
RPC or the database fails, so an outage never kills the worker.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
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


@dataclass
class OracleWorkers:
    """The running oracle loops of a node."""

    loops: list[WorkerLoop]

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        for loop in self.loops:
            loop.request_stop()
        for loop in self.loops:
            loop.stop(timeout_s)


def start_oracle_workers(
    context: OracleContext,
    relayer_account: LocalAccount | None,
    *,
    run_indexer: bool = True,
    treasury_account: LocalAccount | None = None,
) -> OracleWorkers:
    """Start the relayer (when given an account), the treasury's relayer (when given the
    treasury's account) and the indexer in background threads."""
    loops: list[WorkerLoop] = []
    if relayer_account is not None:
        loops.append(WorkerLoop("relayer", build_relayer(context, relayer_account).step))
    if treasury_account is not None:
        treasury = build_relayer(context, treasury_account, role=RelayAccount.TREASURY)
        loops.append(WorkerLoop("treasury-relayer", treasury.step))
    if run_indexer:
        loops.append(WorkerLoop("indexer", build_indexer(context).step, idle_s=0.5))
    for loop in loops:
        loop.start()
    logger.info("oracle workers started", extra={"workers": [loop.name for loop in loops]})
    return OracleWorkers(loops)


def run_until_signalled(workers: OracleWorkers) -> None:
    """Block until SIGINT or SIGTERM, then stop the workers cleanly (for the CLI)."""
    stop = threading.Event()

    def handle(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(1.0):
            if not any(loop.is_alive() for loop in workers.loops):
                break
    finally:
        workers.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
