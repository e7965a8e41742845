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

import signal
import time

import pytest
import sqlalchemy as sa

from node_api.kernel.outbox_table import OUTBOX_TABLE, OutboxStatus
from oracles.chain import LocalAccounts, connect
from oracles.manifest import read_manifest
from scripts.bench.failover import (
    NodeProcess,
    _check_nonces,
    _count_unfinished,
    _lease_holder,
    _opened_counts,
    _wait,
)
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


def test_a_standalone_relayer_takes_over_from_a_killed_node_and_hands_back_on_sigterm() -> None:
    with standalone_setup("relayer") as setup:
        _check_takeover_and_handback(setup)


def _check_takeover_and_handback(setup: Setup) -> None:
    database, anvil, env, token, processes = (
        setup.database,
        setup.anvil,
        setup.env,
        setup.token,
        setup.processes,
    )
    data_dir = setup.data_dir
    started = time.monotonic()
    first = NodeProcess("node-1", data_dir, env)
    processes.append(first)
    first.start()
    first.wait_healthy()
    node_start_s = [time.monotonic() - started]
    _wait(lambda: _lease_holder(database, "relayer") == "node-1", 30, "node-1 leading")
    started = time.monotonic()
    standalone = StandaloneWorker("relayer", data_dir, env)
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
    in_flight_at_kill = stop_mid_load(
        before_kill, lambda: _count_unfinished(database), kill_the_leader
    )
    before_kill.join()
    assert in_flight_at_kill > 0, "the leader was killed with nothing to relay"
    _wait(lambda: _lease_holder(database, "relayer") == "standalone", 10 * LEASE_TTL_S, "takeover")
    takeover_s = time.monotonic() - killed_at[0]
    assert takeover_s <= LEASE_TTL_S + TAKEOVER_SLACK_S
    assert lease_row(database, "relayer") == ("standalone", 2)
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
    in_flight_at_term = stop_mid_load(
        load, lambda: _count_unfinished(database), terminate_the_standalone
    )
    # The standalone relayer never held the lease before node-1 died (its one term is epoch
    # 2); now it drains, releases it at once and exits 0 while node-2 goes on serving.
    exit_code = standalone.process.wait(30)
    assert exit_code == 0, standalone.tail()
    assert held_by(database, "standalone") == [], "the standalone relayer kept its lease"
    _wait(lambda: _lease_holder(database, "relayer") == "node-2", LEASE_TTL_S, "the hand-back")
    handback_s = time.monotonic() - stopped["at"]
    load.join()
    assert in_flight_at_term > 0, "the standalone relayer was stopped with nothing to relay"
    assert load.unanswered == 0, "node-2 stopped answering"
    assert lease_row(database, "relayer") == ("node-2", 3)
    _wait(lambda: _count_unfinished(database) == 0, 30, "node-2 relaying the rest")

    # 3. Every agreement on-chain exactly once, the relayer's nonces contiguous.
    queued = queued_agreements(database)
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
    assert held_by(database, "node-2") == []

    # 4. SIGTERM while a standalone relayer is still starting: it finishes starting, stops
    # at once and exits 0 holding nothing (its handler is in place before the start-up).
    late = StandaloneWorker("relayer", data_dir, env, node_id="late-standalone")
    processes.append(late)
    _wait(late.catches_sigterm, 30, "the late relayer's SIGTERM handler")
    assert "oracle workers started" not in late.log.read_text(errors="replace")
    late.process.send_signal(signal.SIGTERM)
    assert late.process.wait(60) == 0, late.tail()
    assert held_by(database, late.node_id) == []
    print(
        f"starts: nodes {node_start_s[0]:.1f} s, {node_start_s[1]:.1f} s, standalone relayer "
        f"{relayer_start_s:.1f} s; takeover {takeover_s:.2f} s (in flight {in_flight_at_kill}), "
        f"hand-back {handback_s:.2f} s (in flight {in_flight_at_term}); {len(queued)} agreements"
    )
