"""`creditnet bench relay`: agreements anchored per second, and indexer catch-up speed.

On a private anvil with freshly deployed contracts and a fresh database (a SQLite file
by default, or `database_url`, which must name an empty database), it enqueues
agreement openings and runs the relayer until every outbox row is confirmed with its
receipt recorded, at each batch size.
Then it lets a fresh indexer catch up over at least `index_events` events.
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
from pathlib import Path

import sqlalchemy as sa
from web3 import Web3

from node_api.kernel.db import Database
from node_api.kernel.outbox import AgreementOpening, enqueue_core
from node_api.schema.migrate import migrate
from oracles.abi_codec import DeployedContracts
from oracles.anvil import AnvilProcess, pick_free_port
from oracles.chain import LocalAccounts, connect
from oracles.compiler import compile_contracts
from oracles.deploy import DeployContext, ensure_deployed
from oracles.deploy_plan import DEFAULT_PLAN
from oracles.indexer import Indexer, IndexerConfig
from oracles.manifest import Manifest
from oracles.relayer import Relayer, RelayerConfig
from oracles.tables import EVENT_TABLE, SUBMISSION_TABLE
from oracles.tx_sender import JsonRpcClient, TxSender
from scripts.bench.figures import Figures
from scripts.bench.proc_cpu import get_process_cpu_s, get_process_tree, postgres_cpu_s

OPENED_AT = 1_735_689_600
ENQUEUE_CHUNK = 5_000


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


def _fresh_database(folder: Path, name: str, database_url: str | None) -> Database:
    url = database_url or f"sqlite:///{folder / name}.db"
    migrate(url)
    return Database(url)


def _load_average() -> list[float]:
    return [round(load, 2) for load in os.getloadavg()]


def _relay(
    database: Database,
    anvil: AnvilProcess,
    manifest: Manifest,
    contracts: DeployedContracts,
    first: int,
    count: int,
    batch_size: int,
) -> Figures:
    """Enqueue `count` openings, relay them all, return the figures."""
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
    inflight = 64 if batch_size == 1 else 8
    relayer = Relayer(
        database, sender, contracts, RelayerConfig(batch_size_max=batch_size, inflight_max=inflight)
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
        transactions, gas = conn.execute(
            sa.select(sa.func.count(), sa.func.sum(SUBMISSION_TABLE.c.gas_used)).where(
                SUBMISSION_TABLE.c.id > before
            )
        ).one()
    return {
        "batch_size": batch_size,
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
    database = _fresh_database(folder, "indexer", database_url)
    indexer = Indexer(database, JsonRpcClient(rpc_url), contracts, IndexerConfig())
    started = time.perf_counter()
    indexer.run_until_caught_up(timeout_s=600)
    elapsed = time.perf_counter() - started
    with database.engine.connect() as conn:
        events = int(conn.execute(sa.select(sa.func.count()).select_from(EVENT_TABLE)).scalar_one())
    database.dispose()
    return {"events": events, "elapsed_s": round(elapsed, 3), "rate_per_s": round(events / elapsed)}


def run_relay_bench(
    agreements: int = 10_000,
    agreements_batch_1: int = 1_000,
    batch_sizes: str = "1,50,200",
    index_events: int = 50_000,
    database_url: str | None = None,
) -> Figures:
    """Relay throughput at each batch size, then indexer catch-up over `index_events`."""
    with tempfile.TemporaryDirectory(prefix="creditnet-bench-relay-") as tmp:
        folder = Path(tmp)
        with AnvilProcess(pick_free_port(), None, log_path=folder / "anvil.log") as anvil:
            w3 = connect(anvil.rpc_url)
            compiled = compile_contracts()
            accounts = LocalAccounts()
            manifest = ensure_deployed(
                w3,
                compiled,
                accounts.deployer,
                DEFAULT_PLAN,
                folder / "deployments",
                context=DeployContext.for_development(accounts),
            )
            contracts = DeployedContracts.from_manifest(manifest, compiled)
            database = _fresh_database(folder, "relay", database_url)
            runs, next_id = [], 0
            for size in (int(part) for part in str(batch_sizes).split(",")):
                count = agreements_batch_1 if size == 1 else agreements
                runs.append(_relay(database, anvil, manifest, contracts, next_id, count, size))
                next_id += count
            if next_id < index_events:
                _relay(
                    database,
                    anvil,
                    manifest,
                    contracts,
                    next_id,
                    index_events - next_id,
                    200,
                )
            database.dispose()
            catch_up = _index(folder, anvil.rpc_url, contracts, database_url)
    return {"relay": runs, "indexer_catch_up": catch_up, "database": database.backend}
