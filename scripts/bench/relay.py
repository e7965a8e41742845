"""`creditnet bench relay`: agreements anchored per second, and indexer catch-up speed.

At each batch size, on a private anvil with freshly deployed contracts and emptied
relay tables (in a SQLite file by default; with `database_url`, in a new database on
that PostgreSQL server, dropped at the end), it enqueues agreement openings and runs the
relayer until every outbox row is confirmed with its receipt recorded. `max` is the
largest batch the chain takes (its block gas limit and a pool's size limit decide).
Then, on another fresh chain, it relays `index_events` openings and lets a fresh
indexer, with a new database of its own, catch up over them.
Figures carry their units; nothing here is used by the node itself.

The machine may be shared, so each run also says where the CPU went while it relayed,
in microseconds per agreement: this process (the relayer), anvil, and the PostgreSQL
backends of the database (Linux `/proc`; 0 on SQLite), with the load average before
and after.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from web3 import Web3

from node_api.kernel.db import Database
from node_api.kernel.errors import ConfigurationError
from node_api.kernel.outbox import AgreementOpening, enqueue_core
from node_api.kernel.outbox_table import OUTBOX_TABLE
from node_api.schema.migrate import migrate
from oracles.abi_codec import DeployedContracts
from oracles.anvil import AnvilProcess, pick_free_port
from oracles.chain import LocalAccounts, connect
from oracles.compiler import CompiledContracts, compile_contracts
from oracles.deploy import DeployContext, ensure_deployed
from oracles.deploy_plan import DEFAULT_PLAN
from oracles.indexer import Indexer, IndexerConfig
from oracles.manifest import Manifest
from oracles.relay_kinds import AGREEMENT_OPEN_BATCH_MAX
from oracles.relayer import Relayer, RelayerConfig
from oracles.scaleout_tables import ATTEMPT_TABLE
from oracles.tables import EVENT_TABLE, SUBMISSION_TABLE
from oracles.tx_sender import JsonRpcClient, TxSender
from scripts.bench.figures import Figures
from scripts.bench.proc_cpu import get_process_cpu_s, get_process_tree, postgres_cpu_s
from scripts.bench.scratch_db import scratch_database

OPENED_AT = 1_735_689_600
ENQUEUE_CHUNK = 5_000
LARGEST_BATCH = "max"
"""In `batch_sizes`: the most openings one transaction may carry on this chain (what fits
its block gas limit and a pool's size limit: `AgreementOpenKind.get_batch_size_max`)."""


def _openings(first: int, count: int) -> list[AgreementOpening]:
    return [
        AgreementOpening(
            agreement_id=(0xBE << 248 | number).to_bytes(32, "big"),
            borrower_ref=(0xB0 << 248 | number).to_bytes(32, "big"),
            terms_hash=Web3.keccak(text=f"bench-terms-{number % 100}"),
            product_code=1 + number % 5,
            limit_fen=100_000 + number % 900_000,
            apr_bps=1_500 + number % 600,
            opened_at=OPENED_AT,
        )
        for number in range(first, first + count)
    ]


@contextmanager
def _fresh_database(folder: Path, name: str, database_url: str | None) -> Iterator[Database]:
    """A new migrated database: a SQLite file in `folder`, or a scratch database on the
    PostgreSQL server of `database_url` (dropped after), never the URL's own database,
    whose tables an earlier run may have left (an indexer finding another chain's
    checkpoint there rolls all of it back first)."""
    with ExitStack() as stack:
        if database_url is None:
            url = f"sqlite:///{folder / name}.db"
            migrate(url)
        else:
            url = stack.enter_context(scratch_database(database_url, f"creditnet_{name}"))
        database = Database(url)
        stack.callback(database.dispose)
        yield database


def _load_average() -> list[float]:
    return [round(load, 2) for load in os.getloadavg()]


def _relay(
    database: Database,
    chain: _Chain,
    first: int,
    count: int,
    batch_size: int,
    inflight_max: int,
) -> Figures:
    """Enqueue `count` openings, relay them all, return the figures."""
    anvil, manifest, contracts = chain.anvil, chain.manifest, chain.contracts
    rpc_url = anvil.rpc_url
    database_name = str(database.engine.url.database) if database.backend == "postgresql" else ""
    with database.engine.connect() as conn:
        before = conn.execute(sa.select(sa.func.max(SUBMISSION_TABLE.c.id))).scalar() or 0
    started = time.perf_counter()
    for offset in range(0, count, ENQUEUE_CHUNK):
        with database.engine.begin() as conn:
            enqueue_core(conn, _openings(first + offset, min(ENQUEUE_CHUNK, count - offset)))
    enqueued = time.perf_counter()
    sender = TxSender(JsonRpcClient(rpc_url), LocalAccounts().relayer, manifest.chain_id)
    relayer = Relayer(
        database,
        sender,
        contracts,
        RelayerConfig(batch_size_max=batch_size, inflight_max=inflight_max),
    )
    load_before = _load_average()
    anvil_pids = _anvil_pids(anvil)
    anvil_before = sum(get_process_cpu_s(anvil_pids).values())
    postgres_before = _postgres_cpu_s(database_name)
    cpu_before = time.process_time()
    relay_started = time.perf_counter()
    relayer.run_until_idle(timeout_s=600, idle_sleep_s=0.001)
    relayed = time.perf_counter()
    cpu_s = time.process_time() - cpu_before
    anvil_s = sum(get_process_cpu_s(anvil_pids).values()) - anvil_before
    postgres_s = _postgres_cpu_s(database_name) - postgres_before
    with database.engine.connect() as conn:
        transactions, gas, largest = conn.execute(
            sa.select(
                sa.func.count(),
                sa.func.sum(SUBMISSION_TABLE.c.gas_used),
                sa.func.max(SUBMISSION_TABLE.c.item_count),
            ).where(SUBMISSION_TABLE.c.id > before)
        ).one()
    return {
        "batch_size": int(largest or 0),
        "inflight_max": inflight_max,
        "agreements": count,
        "transactions": int(transactions),
        "enqueue_rate_per_s": round(count / (enqueued - started)),
        "relay_elapsed_s": round(relayed - relay_started, 3),
        "anchored_rate_per_s": round(count / (relayed - relay_started)),
        "gas_per_agreement": round(int(gas or 0) / count),
        "cpu_us_per_agreement": {
            "relayer": round(1e6 * cpu_s / count, 1),
            "anvil": round(1e6 * anvil_s / count, 1),
            "postgres": round(1e6 * postgres_s / count, 1),
        },
        "load_average_before_after": [load_before, _load_average()],
    }


def _anvil_pids(anvil: AnvilProcess) -> list[int]:
    """This process's anvil child (found by its command line: the port it serves)."""
    port = f"--port\0{anvil.port}\0".encode()
    found = []
    for pid in get_process_tree(os.getpid()):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"anvil" in command and port in command:
            found.append(pid)
    return found


def _postgres_cpu_s(database_name: str) -> float:
    """The database's backends' CPU seconds now (0 on SQLite)."""
    return postgres_cpu_s(database_name) if database_name else 0.0


def _index(
    folder: Path, rpc_url: str, contracts: DeployedContracts, database_url: str | None
) -> Figures:
    """A fresh indexer over the whole history; events per second."""
    with _fresh_database(folder, "indexer", database_url) as database:
        indexer = Indexer(database, JsonRpcClient(rpc_url), contracts, IndexerConfig())
        started = time.perf_counter()
        indexer.run_until_caught_up(timeout_s=600)
        elapsed = time.perf_counter() - started
        with database.engine.connect() as conn:
            events = int(
                conn.execute(sa.select(sa.func.count()).select_from(EVENT_TABLE)).scalar_one()
            )
        if indexer.reorgs_handled:
            raise RuntimeError("the indexer met a reorganization on a chain that had none")
    return {"events": events, "elapsed_s": round(elapsed, 3), "rate_per_s": round(events / elapsed)}


def _parse_batch_sizes(text: str) -> list[int]:
    """Batch sizes from "1,50,200,max" (`max` asks for as many as the chain takes)."""
    sizes = []
    for part in text.split(","):
        part = part.strip()
        if part == LARGEST_BATCH:
            sizes.append(AGREEMENT_OPEN_BATCH_MAX)
        elif part.isdigit() and int(part) > 0:
            sizes.append(int(part))
        else:
            raise ConfigurationError(
                f"batch_sizes: {part!r} is neither a positive integer nor {LARGEST_BATCH!r}",
                field="batch_sizes",
            )
    return sizes


@dataclass(frozen=True)
class _Chain:
    anvil: AnvilProcess
    manifest: Manifest
    contracts: DeployedContracts


@contextmanager
def _fresh_chain(folder: Path, compiled: CompiledContracts) -> Iterator[_Chain]:
    """A new anvil with the contracts deployed: anvil's CPU per agreement grows with its
    history (45 then 118 µs over two runs of 10,000 on one chain), so each batch size gets
    a chain of its own and the order of the runs does not matter."""
    folder.mkdir()
    with AnvilProcess(pick_free_port(), None, log_path=folder / "anvil.log") as anvil:
        accounts = LocalAccounts()
        manifest = ensure_deployed(
            connect(anvil.rpc_url),
            compiled,
            accounts.deployer,
            DEFAULT_PLAN,
            folder / "deployments",
            context=DeployContext.for_development(accounts),
        )
        yield _Chain(anvil, manifest, DeployedContracts.from_manifest(manifest, compiled))


def _empty_relay_tables(database: Database) -> None:
    """The outbox and the relayer's records emptied, for a run on a fresh chain (whose
    relayer account starts again at nonce 0)."""
    with database.engine.begin() as conn:
        if database.backend == "postgresql":
            names = ", ".join(
                table.name for table in (ATTEMPT_TABLE, SUBMISSION_TABLE, OUTBOX_TABLE)
            )
            conn.execute(sa.text(f"TRUNCATE {names}"))
        else:
            for table in (ATTEMPT_TABLE, SUBMISSION_TABLE, OUTBOX_TABLE):
                conn.execute(sa.delete(table))


def run_relay_bench(
    agreements: int = 10_000,
    agreements_batch_1: int = 1_000,
    batch_sizes: str = f"1,50,200,300,{LARGEST_BATCH}",
    index_events: int = 50_000,
    database_url: str | None = None,
    inflight_max: int = 0,
) -> Figures:
    """Relay throughput at each batch size (`max`: the largest this chain takes), each on
    a fresh chain, then indexer catch-up over `index_events` (0: skipped). `inflight_max`
    0: 64 transactions in flight at batch size 1, else the relayer's default."""
    with tempfile.TemporaryDirectory(prefix="creditnet-bench-relay-") as tmp:
        folder = Path(tmp)
        compiled = compile_contracts()
        with _fresh_database(folder, "relay", database_url) as database:
            runs: list[Figures] = []
            for number, size in enumerate(_parse_batch_sizes(str(batch_sizes))):
                count = agreements_batch_1 if size == 1 else agreements
                inflight = inflight_max or (64 if size == 1 else RelayerConfig.inflight_max)
                _empty_relay_tables(database)
                with _fresh_chain(folder / f"chain-{number}", compiled) as chain:
                    runs.append(_relay(database, chain, 0, count, size, inflight))
            catch_up: Figures = {}
            if index_events > 0:
                _empty_relay_tables(database)
                with _fresh_chain(folder / "chain-indexer", compiled) as chain:
                    _relay(database, chain, 0, index_events, 200, RelayerConfig.inflight_max)
                    catch_up = _index(folder, chain.anvil.rpc_url, chain.contracts, database_url)
            backend = database.backend
    return {"relay": runs, "indexer_catch_up": catch_up, "database": backend}
