"""What the standalone-worker tests share: `creditnet relayer` or `creditnet indexer` as a
process beside `creditnet up` nodes (one PostgreSQL database, one anvil, one data folder),
applications over a node's HTTP API, reads of the worker leases, and the takeover and
hand-back scenario both tests run (`run_takeover_and_handback`)."""

from __future__ import annotations

import itertools
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa

from node_api.kernel.db import Database
from node_api.kernel.outbox import get_utc_now
from node_api.kernel.outbox_table import OUTBOX_TABLE
from node_api.onboarding.identity import make_resident_id
from node_api.risk.fraud_facts import Gender
from oracles.anvil import AnvilProcess, pick_free_port
from oracles.scaleout_tables import LEASE_TABLE
from scripts.applicants import GOOD_PROFILE
from scripts.bench.failover import (
    CLI,
    NodeProcess,
    _count_unfinished,
    _lease_holder,
    _node_env,
    _wait,
)
from scripts.bench.scratch_db import scratch_database
from scripts.bench.seed import seed_application_node
from tests.db_fixtures import PG_ADMIN_URL, require_postgresql

LEASE_TTL_S = 3
TAKEOVER_SLACK_S = 2.0
"""The follower's acquire interval (a quarter of the time to live, at most 1 s) and polling."""
PRODUCT_CODE = "RELAY"
BUSINESS_DAY = date(2025, 11, 11)
PER_PHASE = 60
"""Applications sent at most in each phase (the load stops early when the node dies)."""
IN_FLIGHT_AFTER = 8
"""Approvals a phase waits for before it stops a relayer (with openings not confirmed)."""


class StandaloneWorker:
    """`creditnet relayer|indexer --data-dir DIR` with the node's environment and its own id."""

    def __init__(
        self, command: str, data_dir: Path, env: dict[str, str], node_id: str = "standalone"
    ) -> None:
        self.command = command
        self.node_id = node_id
        self.log = data_dir.parent / f"{node_id}.log"
        self.process = subprocess.Popen(
            [*CLI, command, "--data-dir", str(data_dir)],
            env=dict(env, CREDITNET_NODE_ID=self.node_id),
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("ab"),
        )

    def wait_started(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"the {self.command} exited:\n{self.tail()}"
            if "oracle workers started" in self.log.read_text(errors="replace"):
                return
            time.sleep(0.1)
        raise AssertionError(
            f"the {self.command} did not start within {timeout_s} s:\n{self.tail()}"
        )

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


def application(number: int) -> dict[str, object]:
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
                        json=application(number),
                        headers={"Idempotency-Key": f"app-{number}"},
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


def queued_agreements(database: Database) -> set[str]:
    """The 0x ids of every agreement opening in the outbox."""
    prefix = "agreement_open:"
    with database.engine.connect() as conn:
        keys = conn.execute(
            sa.select(OUTBOX_TABLE.c.business_key).where(
                OUTBOX_TABLE.c.business_key.startswith(prefix)
            )
        ).scalars()
        return {key.removeprefix(prefix) for key in keys}


def lease_row(database: Database, name: str) -> tuple[str, int]:
    with database.engine.connect() as conn:
        row = conn.execute(
            sa.select(LEASE_TABLE.c.holder, LEASE_TABLE.c.epoch).where(LEASE_TABLE.c.name == name)
        ).one()
    return str(row.holder), int(row.epoch)


def held_by(database: Database, holder: str) -> list[str]:
    """The leases `holder` holds now (unexpired)."""
    with database.engine.connect() as conn:
        return sorted(
            conn.execute(
                sa.select(LEASE_TABLE.c.name).where(
                    LEASE_TABLE.c.holder == holder, LEASE_TABLE.c.expires_at > get_utc_now()
                )
            ).scalars()
        )


def stop_mid_load(
    load: ApplicationLoad, pending: Callable[[], int], stop_worker: Callable[[], None]
) -> int:
    """Run `load` until it has `IN_FLIGHT_AFTER` approvals and `pending()` (what the
    worker still has to do) is positive, then call `stop_worker`; `pending()` then."""
    load.start()
    in_flight = 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not load.done():
        if len(load.approved) >= IN_FLIGHT_AFTER:
            in_flight = pending()
            if in_flight > 0:
                break
        time.sleep(0.01)
    stop_worker()
    return in_flight


@dataclass
class Setup:
    """A seeded node database, its chain and data folder, and the processes started."""

    folder: Path
    anvil: AnvilProcess
    env: dict[str, str]
    token: str
    database: Database
    processes: list[NodeProcess | StandaloneWorker] = field(default_factory=list)

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"


@contextmanager
def standalone_setup(name: str) -> Iterator[Setup]:
    """A fresh anvil and PostgreSQL database seeded for applications; every process in
    `processes` is killed on the way out (PostgreSQL is mandatory under CI=true)."""
    require_postgresql(f"nodes and a standalone {name} share PostgreSQL")
    with tempfile.TemporaryDirectory(prefix=f"creditnet-standalone-{name}-") as tmp:
        folder = Path(tmp)
        anvil = AnvilProcess(pick_free_port(), folder / "chain" / "state.json")
        anvil.start()
        processes: list[NodeProcess | StandaloneWorker] = []
        try:
            with scratch_database(PG_ADMIN_URL, f"creditnet_standalone_{name}") as url:
                token = seed_application_node(
                    url, BUSINESS_DAY, PRODUCT_CODE, daily_rate_ppm=400, bill_day_options=[5]
                )
                database = Database(url)
                try:
                    yield Setup(
                        folder,
                        anvil,
                        _node_env(url, anvil.rpc_url, LEASE_TTL_S),
                        token,
                        database,
                        processes,
                    )
                finally:
                    database.dispose()
        finally:
            for process in processes:
                process.kill()
            anvil.stop()


@dataclass
class Handover:
    """What `run_takeover_and_handback` saw; node-2 is still running, and leads."""

    second: NodeProcess
    before_kill: ApplicationLoad
    after_takeover: ApplicationLoad
    pending_at_kill: int
    pending_at_term: int
    takeover_s: float
    handback_s: float
    starts_s: tuple[float, float, float]
    """node-1, the standalone worker, node-2."""


def run_takeover_and_handback(setup: Setup, worker: str, pending: Callable[[], int]) -> Handover:
    """The scenario both standalone tests share, for `worker` ("relayer" or "indexer"),
    whose work left undone `pending()` counts: node-1 leads the worker and the standalone
    process waits; node-1 is SIGKILLed with work pending and the standalone takes over
    within the lease's time to live (epoch 2) and finishes it; node-2 starts and waits
    behind it; under more applications the standalone gets SIGTERM with work pending,
    exits 0 holding nothing and node-2 takes over at once (epoch 3) and finishes."""
    database, env, token, processes = setup.database, setup.env, setup.token, setup.processes
    started = time.monotonic()
    first = NodeProcess("node-1", setup.data_dir, env)
    processes.append(first)
    first.start()
    first.wait_healthy()
    first_start_s = time.monotonic() - started
    _wait(lambda: _lease_holder(database, worker) == "node-1", 30, f"node-1 running the {worker}")
    started = time.monotonic()
    standalone = StandaloneWorker(worker, setup.data_dir, env)
    processes.append(standalone)
    standalone.wait_started()
    standalone_start_s = time.monotonic() - started

    # 1. The node leads; the standalone waits. SIGKILL the leader with work pending.
    assert _lease_holder(database, worker) == "node-1", "the standalone took a held lease"
    killed_at: list[float] = []

    def kill_the_leader() -> None:
        assert _lease_holder(database, worker) == first.node_id
        first.kill()
        killed_at.append(time.monotonic())

    before_kill = ApplicationLoad(f"http://127.0.0.1:{first.port}", token, first=0)
    pending_at_kill = stop_mid_load(before_kill, pending, kill_the_leader)
    before_kill.join()
    assert pending_at_kill > 0, f"the leader was killed with nothing left for its {worker}"
    _wait(lambda: _lease_holder(database, worker) == "standalone", 10 * LEASE_TTL_S, "takeover")
    takeover_s = time.monotonic() - killed_at[0]
    assert takeover_s <= LEASE_TTL_S + TAKEOVER_SLACK_S
    assert lease_row(database, worker) == ("standalone", 2)
    _wait(lambda: pending() == 0, 30, f"the standalone {worker} finishing what the node left")

    # 2. A new node waits behind the standalone (and relays, when the standalone is not the
    # relayer); SIGTERM with work pending hands the lease back.
    second = NodeProcess("node-2", setup.data_dir, env)
    processes.append(second)
    started = time.monotonic()
    second.start()
    second.wait_healthy()
    second_start_s = time.monotonic() - started
    if worker != "relayer":
        _wait(lambda: _lease_holder(database, "relayer") == "node-2", 10 * LEASE_TTL_S, "relayer")
    assert _lease_holder(database, worker) == "standalone", "node-2 took a held lease"
    stopped: dict[str, float] = {}

    def terminate_the_standalone() -> None:
        standalone.process.send_signal(signal.SIGTERM)
        stopped["at"] = time.monotonic()

    load = ApplicationLoad(f"http://127.0.0.1:{second.port}", token, first=PER_PHASE)
    pending_at_term = stop_mid_load(load, pending, terminate_the_standalone)
    # The standalone never held the lease before node-1 died (its one term is epoch 2);
    # now it drains, releases it at once and exits 0 while node-2 goes on serving.
    assert standalone.process.wait(30) == 0, standalone.tail()
    assert held_by(database, "standalone") == [], f"the standalone {worker} kept its lease"
    _wait(lambda: _lease_holder(database, worker) == "node-2", LEASE_TTL_S, "the hand-back")
    handback_s = time.monotonic() - stopped["at"]
    load.join()
    assert pending_at_term > 0, f"the standalone {worker} was stopped with nothing to do"
    assert load.unanswered == 0, "node-2 stopped answering"
    assert lease_row(database, worker) == ("node-2", 3)
    _wait(lambda: _count_unfinished(database) == 0, 30, "node-2 relaying the rest")
    _wait(lambda: pending() == 0, 30, f"node-2 finishing the {worker}'s work")
    return Handover(
        second,
        before_kill,
        load,
        pending_at_kill,
        pending_at_term,
        takeover_s,
        handback_s,
        (first_start_s, standalone_start_s, second_start_s),
    )
