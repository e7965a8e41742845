"""`creditnet bench failover`: two nodes on one PostgreSQL database and one chain; the
relayer's leader is SIGKILLed mid-relay and the other node takes over.

It starts an anvil and a scratch PostgreSQL database, then two `creditnet up` processes
(`node-a` first, so it leads every worker; both attached to the chain with
`CREDITNET_RPC_URL` and sharing one data folder, hence one deployment manifest). While
agreement openings arrive in waves it SIGKILLs the relayer's leader, measures the time
until the other node holds the relayer's lease, waits until every opening is confirmed,
and counts each agreement's `AgreementOpened` events on the chain. Then it stops the
survivor with SIGTERM (a drain) and checks it exited cleanly and released its leases.

Figures: `takeover_s`, `duplicates` (extra openings on-chain, must be 0), `missing`,
`nonces_contiguous` (the relayer's mined nonces are exactly 0..n-1), the drain's exit
code and duration.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import sqlalchemy as sa
from web3 import Web3

from node_api.kernel.db import Database
from node_api.kernel.outbox import AgreementOpening, enqueue_core, get_utc_now
from node_api.kernel.outbox_table import OUTBOX_TABLE, OutboxStatus
from oracles.anvil import AnvilProcess, pick_free_port
from oracles.chain import LocalAccounts, connect
from oracles.manifest import Manifest, read_manifest
from oracles.scaleout_tables import LEASE_TABLE
from oracles.tables import SUBMISSION_TABLE
from scripts.bench.figures import Figures
from scripts.bench.scratch_db import scratch_database, shown_url

CLI = [sys.executable, "-m", "node_api.cli"]
OPENED_AT = 1_735_689_600
OPENED_TOPIC = Web3.keccak(
    text="AgreementOpened(bytes32,bytes32,bytes32,uint32,uint64,uint32,uint64,bytes32)"
)
MINED_STATUSES = ("mined", "confirmed", "reverted")


class NodeProcess:
    """One `creditnet up` process of the benchmark."""

    def __init__(self, node_id: str, data_dir: Path, env: dict[str, str]) -> None:
        self.node_id = node_id
        self.port = pick_free_port()
        self.data_dir = data_dir
        self.env = dict(env, CREDITNET_NODE_ID=node_id)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.data_dir.parent / f"{self.node_id}.log").open("ab")
        self.process = subprocess.Popen(
            [*CLI, "up", "--port", str(self.port), "--data-dir", str(self.data_dir)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )

    def wait_healthy(self, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"{self.node_id} exited; see {self.node_id}.log")
            try:
                body = httpx.get(f"http://127.0.0.1:{self.port}/v1/health", timeout=2).json()
                if body.get("status") == "ok":
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.node_id} not healthy within {timeout_s} s")

    def signal(self, sig: signal.Signals) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)

    def wait(self, timeout_s: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout_s)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def _openings(first: int, count: int) -> list[AgreementOpening]:
    return [
        AgreementOpening(
            agreement_id=(0xFA << 248 | number).to_bytes(32, "big"),
            borrower_ref=(0xB0 << 248 | number).to_bytes(32, "big"),
            terms_hash=Web3.keccak(text=f"failover-terms-{number % 10}"),
            product_code=1,
            limit_fen=500_000,
            apr_bps=1_800,
            opened_at=OPENED_AT,
        )
        for number in range(first, first + count)
    ]


def _node_env(database_url: str, rpc_url: str, lease_ttl_s: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDITNET_")}
    env.update(
        CREDITNET_ENV="dev",
        CREDITNET_DATABASE_URL=database_url,
        CREDITNET_RPC_URL=rpc_url,
        CREDITNET_LEASE_TTL_S=str(lease_ttl_s),
        CREDITNET_ACCESS_LOG="false",
        CREDITNET_SETTLEMENT_INTERVAL_S="3600",
    )
    return env


def _lease_holder(database: Database, name: str) -> str | None:
    """The node holding lease `name` now (None: free or expired)."""
    with database.engine.connect() as conn:
        row = conn.execute(
            sa.select(LEASE_TABLE.c.holder, LEASE_TABLE.c.expires_at).where(
                LEASE_TABLE.c.name == name
            )
        ).first()
    if row is None or row.expires_at <= get_utc_now():
        return None
    return str(row.holder)


def _wait(condition: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Seconds until `condition` held (polling every 50 ms)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if condition():
            return time.monotonic() - started
        time.sleep(0.05)
    raise RuntimeError(f"{what} not within {timeout_s} s")


def _count_unfinished(database: Database) -> int:
    with database.engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(OUTBOX_TABLE)
                .where(OUTBOX_TABLE.c.status != OutboxStatus.CONFIRMED.value)
            ).scalar_one()
        )


def _opened_counts(w3: Web3, manifest: Manifest) -> dict[str, int]:
    logs = w3.eth.get_logs(
        {
            "fromBlock": manifest.created_at_block,
            "toBlock": "latest",
            "address": Web3.to_checksum_address(manifest.get_address("CreditRegistry")),
            "topics": [OPENED_TOPIC],
        }  # type: ignore[typeddict-item]
    )
    counts: dict[str, int] = {}
    for entry in logs:
        key = entry["topics"][1].to_0x_hex()
        counts[key] = counts.get(key, 0) + 1
    return counts


def _check_nonces(database: Database, w3: Web3, relayer: str) -> tuple[bool, int]:
    """Whether the relayer's mined submissions hold exactly nonces 0..n-1 (n = the chain's
    count for the account), and n."""
    chain_nonce = w3.eth.get_transaction_count(Web3.to_checksum_address(relayer))
    with database.engine.connect() as conn:
        nonces = sorted(
            int(nonce)
            for nonce in conn.execute(
                sa.select(SUBMISSION_TABLE.c.nonce).where(
                    SUBMISSION_TABLE.c.sender == relayer,
                    SUBMISSION_TABLE.c.status.in_(MINED_STATUSES),
                )
            ).scalars()
        )
    return nonces == list(range(chain_nonce)), chain_nonce


def _run_waves(
    database: Database, waves: int, wave_size: int, kill_after: int, on_kill: Callable[[], None]
) -> int:
    """Enqueue `waves` waves of openings 0.1 s apart, calling `on_kill` after `kill_after`;
    the outbox rows not yet confirmed when it was called."""
    in_flight = 0
    for wave in range(waves):
        with database.engine.begin() as conn:
            enqueue_core(conn, _openings(wave * wave_size, wave_size))
        if wave + 1 == kill_after:
            in_flight = _count_unfinished(database)
            on_kill()
        time.sleep(0.1)
    return in_flight


def run_failover_bench(
    waves: int = 30,
    wave_size: int = 20,
    kill_after_waves: int = 10,
    lease_ttl_s: int = 3,
    database_url: str | None = None,
) -> Figures:
    """Kill the relayer's leader after `kill_after_waves` waves of `wave_size` openings."""
    with tempfile.TemporaryDirectory(prefix="creditnet-bench-failover-") as tmp:
        folder = Path(tmp)
        anvil = AnvilProcess(pick_free_port(), folder / "chain" / "state.json")
        anvil.start()
        nodes: list[NodeProcess] = []
        try:
            with scratch_database(database_url, "creditnet_failover") as url:
                env = _node_env(url, anvil.rpc_url, lease_ttl_s)
                nodes = [NodeProcess(n, folder / "data", env) for n in ("node-a", "node-b")]
                figures = _measure(
                    Database(url), anvil, nodes, waves, wave_size, kill_after_waves, lease_ttl_s
                )
                figures["database"] = shown_url(url)
                return figures
        finally:
            for node in nodes:
                node.kill()
            anvil.stop()


def _measure(
    database: Database,
    anvil: AnvilProcess,
    nodes: list[NodeProcess],
    waves: int,
    wave_size: int,
    kill_after: int,
    lease_ttl_s: int,
) -> Figures:
    leader, follower = nodes
    started = time.monotonic()
    leader.start()
    leader.wait_healthy()
    _wait(lambda: _lease_holder(database, "relayer") is not None, 30, "a relayer leader")
    leader_start_s = time.monotonic() - started
    started = time.monotonic()
    follower.start()
    follower.wait_healthy()
    follower_start_s = time.monotonic() - started
    killed_at: list[float] = []

    def kill_leader() -> None:
        leader.process.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
        killed_at.append(time.monotonic())

    in_flight = _run_waves(database, waves, wave_size, kill_after, kill_leader)
    _wait(
        lambda: _lease_holder(database, "relayer") == follower.node_id,
        10 * lease_ttl_s,
        "the takeover",
    )
    takeover_s = time.monotonic() - killed_at[0]
    relayed_s = _wait(lambda: _count_unfinished(database) == 0, 60, "every opening confirmed")

    w3 = connect(anvil.rpc_url)
    manifest = read_manifest(leader.data_dir / "deployments", w3.eth.chain_id)
    if manifest is None:
        raise RuntimeError("the nodes wrote no deployment manifest")
    counts = _opened_counts(w3, manifest)
    expected = {"0x" + o.agreement_id.hex() for o in _openings(0, waves * wave_size)}
    contiguous, nonce = _check_nonces(database, w3, LocalAccounts().relayer.address)

    drain_started = time.monotonic()
    follower.signal(signal.SIGTERM)
    exit_code = follower.wait(60)
    drain_s = time.monotonic() - drain_started
    with database.engine.connect() as conn:
        held = conn.execute(
            sa.select(sa.func.count())
            .select_from(LEASE_TABLE)
            .where(
                LEASE_TABLE.c.holder == follower.node_id,
                LEASE_TABLE.c.expires_at > get_utc_now(),
            )
        ).scalar_one()
    database.dispose()
    return {
        "node_a_start_s": round(leader_start_s, 3),
        "node_b_start_s": round(follower_start_s, 3),
        "agreements": len(expected),
        "lease_ttl_s": lease_ttl_s,
        "in_flight_at_kill": in_flight,
        "takeover_s": round(takeover_s, 3),
        "all_confirmed_after_takeover_s": round(relayed_s, 3),
        "anchored": len(expected & set(counts)),
        "duplicates": sum(count - 1 for key, count in counts.items() if key in expected),
        "missing": len(expected - set(counts)),
        "relayer_nonce": nonce,
        "nonces_contiguous": contiguous,
        "drain_exit_code": exit_code,
        "drain_s": round(drain_s, 3),
        "leases_held_after_drain": int(held),
    }
