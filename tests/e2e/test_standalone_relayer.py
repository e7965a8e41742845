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

import pytest
import sqlalchemy as sa

from node_api.kernel.outbox_table import OUTBOX_TABLE, OutboxStatus
from oracles.chain import LocalAccounts, connect
from oracles.manifest import read_manifest
from scripts.bench.failover import (
    _check_nonces,
    _count_unfinished,
    _opened_counts,
    _wait,
)
from tests.e2e.standalone_workers import (
    IN_FLIGHT_AFTER,
    Setup,
    StandaloneWorker,
    held_by,
    queued_agreements,
    run_takeover_and_handback,
    standalone_setup,
)

pytestmark = [pytest.mark.chain, pytest.mark.slow, pytest.mark.xdist_group("node_up")]


def test_a_standalone_relayer_takes_over_from_a_killed_node_and_hands_back_on_sigterm() -> None:
    with standalone_setup("relayer") as setup:
        _check_takeover_and_handback(setup)


def _check_takeover_and_handback(setup: Setup) -> None:
    database, env, processes = setup.database, setup.env, setup.processes
    handover = run_takeover_and_handback(setup, "relayer", lambda: _count_unfinished(database))

    # 3. Every agreement on-chain exactly once, the relayer's nonces contiguous.
    queued = queued_agreements(database)
    assert len(queued) >= 2 * IN_FLIGHT_AFTER
    with database.engine.connect() as conn:
        statuses = set(conn.execute(sa.select(OUTBOX_TABLE.c.status).distinct()).scalars())
    assert statuses == {OutboxStatus.CONFIRMED.value}
    w3 = connect(setup.anvil.rpc_url)
    manifest = read_manifest(setup.data_dir / "deployments", w3.eth.chain_id)
    assert manifest is not None
    counts = _opened_counts(w3, manifest)
    assert {key: count for key, count in counts.items() if count != 1} == {}, "anchored twice"
    assert queued - set(counts) == set(), "queued but never anchored"
    assert set(handover.before_kill.approved) | set(handover.after_takeover.approved) <= queued
    contiguous, relayer_nonce = _check_nonces(database, w3, LocalAccounts().relayer.address)
    assert contiguous and relayer_nonce >= 1

    handover.second.signal(signal.SIGTERM)
    assert handover.second.wait(60) == 0
    assert held_by(database, "node-2") == []

    # 4. SIGTERM while a standalone relayer is still starting: it finishes starting, stops
    # at once and exits 0 holding nothing (its handler is in place before the start-up).
    late = StandaloneWorker("relayer", setup.data_dir, env, node_id="late-standalone")
    processes.append(late)
    _wait(late.catches_sigterm, 30, "the late relayer's SIGTERM handler")
    assert "oracle workers started" not in late.log.read_text(errors="replace")
    late.process.send_signal(signal.SIGTERM)
    assert late.process.wait(60) == 0, late.tail()
    assert held_by(database, late.node_id) == []
    first_s, standalone_s, second_s = handover.starts_s
    print(
        f"starts: nodes {first_s:.1f} s, {second_s:.1f} s, standalone relayer "
        f"{standalone_s:.1f} s; takeover {handover.takeover_s:.2f} s (in flight "
        f"{handover.pending_at_kill}), hand-back {handover.handback_s:.2f} s (in flight "
        f"{handover.pending_at_term}); {len(queued)} agreements"
    )
