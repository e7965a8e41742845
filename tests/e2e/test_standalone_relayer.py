"""`creditnet relayer` beside `creditnet up`, as processes a user starts: one PostgreSQL
database, one chain, one data folder, the relayer's lease shared between them.

Applications arrive over the node's HTTP API and every approved one queues its
agreement's opening. The node (first up, so it leads the relayer) is SIGKILLed while
openings are in flight: the standalone relayer takes the lease within its time to live
and relays what the node left. A second node starts and waits behind it; under more
applications the standalone relayer gets SIGTERM: it exits 0 having handed its lease
back, and the node takes the relayer over at once. Every agreement is then on-chain
exactly once and the relayer's nonces are contiguous. Last, a standalone relayer stopped
with SIGTERM while still starting exits 0 holding no lease.
"""

from __future__ import annotations

import itertools
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from node_api.kernel.db import Database
from node_api.kernel.outbox import get_utc_now
from node_api.kernel.outbox_table import OUTBOX_TABLE, OutboxStatus
from node_api.onboarding.identity import make_resident_id
from node_api.risk.fraud_facts import Gender
from oracles.anvil import AnvilProcess, pick_free_port
from oracles.chain import LocalAccounts, connect
from oracles.manifest import read_manifest
from oracles.scaleout_tables import LEASE_TABLE
from scripts.applicants import GOOD_PROFILE
from scripts.bench.failover import (
    CLI,
    NodeProcess,
    _check_nonces,
    _count_unfinished,
    _lease_holder,
    _node_env,
    _opened_counts,
    _wait,
)
from scripts.bench.scratch_db import scratch_database
from scripts.bench.seed import seed_application_node
from tests.db_fixtures import IN_CI, PG_ADMIN_URL, _pg_reachable

pytestmark = [pytest.mark.chain, pytest.mark.slow, pytest.mark.xdist_group("node_up")]

LEASE_TTL_S = 3
TAKEOVER_SLACK_S = 2.0
"""The follower's acquire interval (a quarter of the time to live, at most 1 s) and polling."""
PRODUCT_CODE = "RELAY"
BUSINESS_DAY = date(2025, 11, 11)
PER_PHASE = 60
"""Applications sent at most in each phase (the load stops early when the node dies)."""
IN_FLIGHT_AFTER = 8
"""Approvals a phase waits for before it stops a relayer (with openings not confirmed)."""


class StandaloneRelayer:
    """`creditnet relayer --data-dir DIR` with the node's environment and its own id."""

    def __init__(self, data_dir: Path, env: dict[str, str], node_id: str = "standalone") -> None:
        self.node_id = node_id
        self.log = data_dir.parent / f"{node_id}.log"
        self.process = subprocess.Popen(
            [*CLI, "relayer", "--data-dir", str(data_dir)],
            env=dict(env, CREDITNET_NODE_ID=self.node_id),
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("ab"),
        )

    def wait_started(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"the relayer exited:\n{self.tail()}"
            if "oracle workers started" in self.log.read_text(errors="replace"):
                return
            time.sleep(0.1)
        raise AssertionError(f"the relayer did not start within {timeout_s} s:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def catches_sigterm(self) -> bool:
        """Whether the process has its own SIGTERM handler yet (/proc's caught-signal mask)."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        caught = next(line for line in status.splitlines() if line.startswith("SigCgt:"))
        return bool(int(caught.split()[1], 16) >> (signal.SIGTERM - 1) & 1)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def _application(number: int) -> dict[str, object]:
    """A distinct applicant the scorecard approves (synthetic identity, no real person)."""
    birth = date(1975, 1, 1) + timedelta(days=number)
    gender = Gender.MALE if number % 2 else Gender.FEMALE
    return {
        "product_code": PRODUCT_CODE,
        "name": "Relay " + "".join(chr(ord("a") + int(digit)) for digit in str(number)),
        "id_number": make_resident_id("110101", birth, number % 1000, gender),
        "phone": f"137{number:08d}",
        "monthly_income_fen": 1_500_000,
        "device_id": f"device-{number}",
        "ip": f"198.51.100.{number % 250 + 1}",
        "channel_id": "app",
        "characteristics": dict(GOOD_PROFILE),
    }


@dataclass
class ApplicationLoad:
    """Applications over `connections` keep-alive clients until `limit` were sent or the
    node stops answering."""

    base_url: str
    token: str
    first: int
    limit: int = PER_PHASE
    connections: int = 3
    approved: list[str] = field(default_factory=list)
    """The 0x agreement ids of the approvals the node answered."""
    unanswered: int = 0
    _numbers: itertools.count[int] = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _clients: list[Future[None]] = field(default_factory=list)

    def start(self) -> None:
        self._numbers = itertools.count(self.first)
        pool = ThreadPoolExecutor(self.connections)
        self._clients = [pool.submit(self._client) for _ in range(self.connections)]
        pool.shutdown(wait=False)

    def done(self) -> bool:
        return all(client.done() for client in self._clients)

    def join(self) -> None:
        """Wait for every client; re-raise the first one's failure."""
        for client in self._clients:
            client.result(timeout=60)

    def _client(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.base_url, headers=headers, timeout=30) as client:
            while True:
                with self._lock:
                    number = next(self._numbers)
                if number >= self.first + self.limit:
                    return
                try:
                    answer = client.post(
                        "/v1/applications",
                        json=_application(number),
                        headers={"Idempotency-Key": f"relay-app-{number}"},
                    )
                except httpx.HTTPError:  # the node was killed: its load ends here
                    with self._lock:
                        self.unanswered += 1
                    return
                assert answer.status_code == 201, answer.text
                body = answer.json()
                if body["decision"] == "approved":
                    with self._lock:
                        self.approved.append(str(body["agreement_id"]))


def _queued_agreements(database: Database) -> set[str]:
    """The 0x ids of every agreement opening in the outbox."""
    prefix = "agreement_open:"
    with database.engine.connect() as conn:
        keys = conn.execute(
            sa.select(OUTBOX_TABLE.c.business_key).where(
                OUTBOX_TABLE.c.business_key.startswith(prefix)
            )
        ).scalars()
        return {key.removeprefix(prefix) for key in keys}


def _lease_row(database: Database, name: str) -> tuple[str, int]:
    with database.engine.connect() as conn:
        row = conn.execute(
            sa.select(LEASE_TABLE.c.holder, LEASE_TABLE.c.epoch).where(LEASE_TABLE.c.name == name)
        ).one()
    return str(row.holder), int(row.epoch)


def _held_by(database: Database, holder: str) -> list[str]:
    """The leases `holder` holds now (unexpired)."""
    with database.engine.connect() as conn:
        return sorted(
            conn.execute(
                sa.select(LEASE_TABLE.c.name).where(
                    LEASE_TABLE.c.holder == holder, LEASE_TABLE.c.expires_at > get_utc_now()
                )
            ).scalars()
        )


def _stop_relayer_mid_load(
    database: Database, load: ApplicationLoad, stop_relayer: Callable[[], None]
) -> int:
    """Run `load` until it has `IN_FLIGHT_AFTER` approvals and openings wait for the chain,
    then call `stop_relayer`; the openings not confirmed at that moment."""
    load.start()
    in_flight = 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not load.done():
        if len(load.approved) >= IN_FLIGHT_AFTER:
            in_flight = _count_unfinished(database)
            if in_flight > 0:
                break
        time.sleep(0.01)
    stop_relayer()
    return in_flight


def test_a_standalone_relayer_takes_over_from_a_killed_node_and_hands_back_on_sigterm() -> None:
    problem = _pg_reachable()
    if problem is not None:
        if IN_CI:
            pytest.fail(f"PostgreSQL is mandatory under CI=true and is unreachable: {problem}")
        pytest.skip(f"a node and a standalone relayer share PostgreSQL: {problem}")

    with tempfile.TemporaryDirectory(prefix="creditnet-standalone-relayer-") as tmp:
        folder = Path(tmp)
        anvil = AnvilProcess(pick_free_port(), folder / "chain" / "state.json")
        anvil.start()
        processes: list[NodeProcess | StandaloneRelayer] = []
        try:
            with scratch_database(PG_ADMIN_URL, "creditnet_standalone") as url:
                token = seed_application_node(
                    url, BUSINESS_DAY, PRODUCT_CODE, daily_rate_ppm=400, bill_day_options=[5]
                )
                env = _node_env(url, anvil.rpc_url, LEASE_TTL_S)
                database = Database(url)
                try:
                    _check_takeover_and_handback(database, anvil, folder, env, token, processes)
                finally:
                    database.dispose()
        finally:
            for process in processes:
                process.kill()
            anvil.stop()


def _check_takeover_and_handback(
    database: Database,
    anvil: AnvilProcess,
    folder: Path,
    env: dict[str, str],
    token: str,
    processes: list[NodeProcess | StandaloneRelayer],
) -> None:
    data_dir = folder / "data"
    started = time.monotonic()
    first = NodeProcess("node-1", data_dir, env)
    processes.append(first)
    first.start()
    first.wait_healthy()
    node_start_s = [time.monotonic() - started]
    _wait(lambda: _lease_holder(database, "relayer") == "node-1", 30, "node-1 leading")
    started = time.monotonic()
    standalone = StandaloneRelayer(data_dir, env)
    processes.append(standalone)
    standalone.wait_started()
    relayer_start_s = time.monotonic() - started

    # 1. The node leads; the standalone relayer waits. SIGKILL the leader mid-relay.
    assert _lease_holder(database, "relayer") == "node-1", "the standalone took a held lease"
    killed_at: list[float] = []

    def kill_the_leader() -> None:
        assert _lease_holder(database, "relayer") == first.node_id
        first.kill()
        killed_at.append(time.monotonic())

    before_kill = ApplicationLoad(f"http://127.0.0.1:{first.port}", token, first=0)
    in_flight_at_kill = _stop_relayer_mid_load(database, before_kill, kill_the_leader)
    before_kill.join()
    assert in_flight_at_kill > 0, "the leader was killed with nothing to relay"
    _wait(lambda: _lease_holder(database, "relayer") == "standalone", 10 * LEASE_TTL_S, "takeover")
    takeover_s = time.monotonic() - killed_at[0]
    assert takeover_s <= LEASE_TTL_S + TAKEOVER_SLACK_S
    assert _lease_row(database, "relayer") == ("standalone", 2)
    _wait(lambda: _count_unfinished(database) == 0, 30, "the standalone relaying the rest")

    # 2. A new node waits behind the standalone relayer; SIGTERM hands the lease back.
    second = NodeProcess("node-2", data_dir, env)
    processes.append(second)
    started = time.monotonic()
    second.start()
    second.wait_healthy()
    node_start_s.append(time.monotonic() - started)
    assert _lease_holder(database, "relayer") == "standalone", "node-2 took a held lease"
    stopped: dict[str, float] = {}

    def terminate_the_standalone() -> None:
        standalone.process.send_signal(signal.SIGTERM)
        stopped["at"] = time.monotonic()

    load = ApplicationLoad(f"http://127.0.0.1:{second.port}", token, first=PER_PHASE)
    in_flight_at_term = _stop_relayer_mid_load(database, load, terminate_the_standalone)
    # The standalone relayer never held the lease before node-1 died (its one term is epoch
    # 2); now it drains, releases it at once and exits 0 while node-2 goes on serving.
    exit_code = standalone.process.wait(30)
    assert exit_code == 0, standalone.tail()
    assert _held_by(database, "standalone") == [], "the standalone relayer kept its lease"
    _wait(lambda: _lease_holder(database, "relayer") == "node-2", LEASE_TTL_S, "the hand-back")
    handback_s = time.monotonic() - stopped["at"]
    load.join()
    assert in_flight_at_term > 0, "the standalone relayer was stopped with nothing to relay"
    assert load.unanswered == 0, "node-2 stopped answering"
    assert _lease_row(database, "relayer") == ("node-2", 3)
    _wait(lambda: _count_unfinished(database) == 0, 30, "node-2 relaying the rest")

    # 3. Every agreement on-chain exactly once, the relayer's nonces contiguous.
    queued = _queued_agreements(database)
    assert len(queued) >= 2 * IN_FLIGHT_AFTER
    with database.engine.connect() as conn:
        statuses = set(conn.execute(sa.select(OUTBOX_TABLE.c.status).distinct()).scalars())
    assert statuses == {OutboxStatus.CONFIRMED.value}
    w3 = connect(anvil.rpc_url)
    manifest = read_manifest(data_dir / "deployments", w3.eth.chain_id)
    assert manifest is not None
    counts = _opened_counts(w3, manifest)
    assert {key: count for key, count in counts.items() if count != 1} == {}, "anchored twice"
    assert queued - set(counts) == set(), "queued but never anchored"
    assert set(before_kill.approved) | set(load.approved) <= queued
    contiguous, relayer_nonce = _check_nonces(database, w3, LocalAccounts().relayer.address)
    assert contiguous and relayer_nonce >= 1

    second.signal(signal.SIGTERM)
    assert second.wait(60) == 0
    assert _held_by(database, "node-2") == []

    # 4. SIGTERM while a standalone relayer is still starting: it finishes starting, stops
    # at once and exits 0 holding nothing (its handler is in place before the start-up).
    late = StandaloneRelayer(data_dir, env, node_id="late-standalone")
    processes.append(late)
    _wait(late.catches_sigterm, 30, "the late relayer's SIGTERM handler")
    assert "oracle workers started" not in late.log.read_text(errors="replace")
    late.process.send_signal(signal.SIGTERM)
    assert late.process.wait(60) == 0, late.tail()
    assert _held_by(database, late.node_id) == []
    print(
        f"starts: nodes {node_start_s[0]:.1f} s, {node_start_s[1]:.1f} s, standalone relayer "
        f"{relayer_start_s:.1f} s; takeover {takeover_s:.2f} s (in flight {in_flight_at_kill}), "
        f"hand-back {handback_s:.2f} s (in flight {in_flight_at_term}); {len(queued)} agreements"
    )
