"""`creditnet indexer` beside `creditnet up`, as processes a user starts: one PostgreSQL
database, one chain, one data folder, the indexer's lease shared between them.

The node (first up, so it leads the relayer and the indexer) relays the agreements of the
applications it approves; the standalone indexer waits. The node is SIGKILLed while
anchored agreements are still unindexed: the standalone indexer takes the lease within its
time to live and indexes them. A second node relays more while the standalone indexer
follows; the standalone indexer gets SIGTERM with events unindexed: it exits 0 having
handed its lease back, and the node indexes the rest at once. The mirror then holds every
CreditRegistry event on the chain exactly once, and every anchored agreement.
"""

from __future__ import annotations

import signal
import time

import pytest
import sqlalchemy as sa
from web3 import Web3

from oracles.chain import connect
from oracles.manifest import Manifest, read_manifest
from oracles.tables import CHAIN_AGREEMENT_TABLE, EVENT_TABLE
from scripts.bench.failover import NodeProcess, _count_unfinished, _lease_holder, _wait
from tests.e2e.standalone_workers import (
    IN_FLIGHT_AFTER,
    LEASE_TTL_S,
    PER_PHASE,
    TAKEOVER_SLACK_S,
    ApplicationLoad,
    Setup,
    StandaloneWorker,
    held_by,
    lease_row,
    queued_agreements,
    standalone_setup,
    stop_mid_load,
)

pytestmark = [pytest.mark.chain, pytest.mark.slow, pytest.mark.xdist_group("node_up")]

REGISTRY = "CreditRegistry"


def _registry_logs(w3: Web3, manifest: Manifest) -> list[tuple[str, int]]:
    """(block hash, log index) of every CreditRegistry event on the chain (its deployment's
    included)."""
    logs = w3.eth.get_logs(
        {
            "fromBlock": 0,
            "toBlock": "latest",
            "address": manifest.get_address(REGISTRY),
        }
    )
    return [(entry["blockHash"].to_0x_hex(), int(entry["logIndex"])) for entry in logs]


def _mirrored_logs(setup: Setup) -> list[tuple[str, int]]:
    """(block hash, log index) of every CreditRegistry event the indexer stored."""
    events = EVENT_TABLE
    with setup.database.engine.connect() as conn:
        rows = conn.execute(
            sa.select(events.c.block_hash, events.c.log_index).where(events.c.contract == REGISTRY)
        ).all()
    return [(row.block_hash, int(row.log_index)) for row in rows]


def _anchored(setup: Setup) -> set[str]:
    with setup.database.engine.connect() as conn:
        ids = conn.execute(sa.select(CHAIN_AGREEMENT_TABLE.c.agreement_id)).scalars()
        return {str(agreement_id) for agreement_id in ids}


def test_a_standalone_indexer_takes_over_from_a_killed_node_and_hands_back_on_sigterm() -> None:
    with standalone_setup("indexer") as setup:
        _check_takeover_and_handback(setup)


def _check_takeover_and_handback(setup: Setup) -> None:
    database, env, token, processes = setup.database, setup.env, setup.token, setup.processes
    first = NodeProcess("node-1", setup.data_dir, env)
    processes.append(first)
    first.start()
    first.wait_healthy()
    _wait(lambda: _lease_holder(database, "indexer") == "node-1", 30, "node-1 indexing")
    w3 = connect(setup.anvil.rpc_url)
    manifest = read_manifest(setup.data_dir / "deployments", w3.eth.chain_id)
    assert manifest is not None

    def unindexed() -> int:
        """Agreements the chain holds and the mirror does not yet."""
        on_chain = set(_registry_logs(w3, manifest))
        return len(on_chain - set(_mirrored_logs(setup)))

    standalone = StandaloneWorker("indexer", setup.data_dir, env)
    processes.append(standalone)
    standalone.wait_started()

    # 1. The node leads; the standalone indexer waits. SIGKILL the node with events unindexed.
    assert _lease_holder(database, "indexer") == "node-1", "the standalone took a held lease"
    killed_at: list[float] = []

    def kill_the_leader() -> None:
        first.kill()
        killed_at.append(time.monotonic())

    before_kill = ApplicationLoad(f"http://127.0.0.1:{first.port}", token, first=0)
    unindexed_at_kill = stop_mid_load(before_kill, unindexed, kill_the_leader)
    before_kill.join()
    assert unindexed_at_kill > 0, "the node was killed with nothing left to index"
    _wait(lambda: _lease_holder(database, "indexer") == "standalone", 10 * LEASE_TTL_S, "takeover")
    takeover_s = time.monotonic() - killed_at[0]
    assert takeover_s <= LEASE_TTL_S + TAKEOVER_SLACK_S
    assert lease_row(database, "indexer") == ("standalone", 2)
    _wait(lambda: unindexed() == 0, 30, "the standalone indexing what the node left")

    # 2. A new node relays (the relayer's lease is free) and waits behind the standalone
    # indexer; SIGTERM with events unindexed hands the indexer's lease back.
    second = NodeProcess("node-2", setup.data_dir, env)
    processes.append(second)
    second.start()
    second.wait_healthy()
    _wait(lambda: _lease_holder(database, "relayer") == "node-2", 10 * LEASE_TTL_S, "relayer")
    assert _lease_holder(database, "indexer") == "standalone", "node-2 took a held lease"
    stopped: dict[str, float] = {}

    def terminate_the_standalone() -> None:
        standalone.process.send_signal(signal.SIGTERM)
        stopped["at"] = time.monotonic()

    load = ApplicationLoad(f"http://127.0.0.1:{second.port}", token, first=PER_PHASE)
    unindexed_at_term = stop_mid_load(load, unindexed, terminate_the_standalone)
    assert standalone.process.wait(30) == 0, standalone.tail()
    assert held_by(database, "standalone") == [], "the standalone indexer kept its lease"
    _wait(lambda: _lease_holder(database, "indexer") == "node-2", LEASE_TTL_S, "the hand-back")
    handback_s = time.monotonic() - stopped["at"]
    load.join()
    assert unindexed_at_term > 0, "the standalone indexer was stopped with nothing to index"
    assert load.unanswered == 0, "node-2 stopped answering"
    assert lease_row(database, "indexer") == ("node-2", 3)
    _wait(lambda: _count_unfinished(database) == 0, 30, "node-2 relaying the rest")
    _wait(lambda: unindexed() == 0, 30, "node-2 indexing the rest")

    # 3. Every CreditRegistry event mirrored exactly once; every agreement anchored.
    on_chain, mirrored = _registry_logs(w3, manifest), _mirrored_logs(setup)
    assert len(mirrored) == len(set(mirrored)) == len(on_chain) == len(set(on_chain))
    assert set(mirrored) == set(on_chain)
    queued = queued_agreements(database)
    assert len(queued) >= 2 * IN_FLIGHT_AFTER
    assert _anchored(setup) == queued
    assert set(before_kill.approved) | set(load.approved) <= queued

    second.signal(signal.SIGTERM)
    assert second.wait(60) == 0
    assert held_by(database, "node-2") == []
    print(
        f"takeover {takeover_s:.2f} s ({unindexed_at_kill} events unindexed), hand-back "
        f"{handback_s:.2f} s ({unindexed_at_term} unindexed); {len(on_chain)} events, "
        f"{len(queued)} agreements"
    )
