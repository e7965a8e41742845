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
from functools import cache

import pytest
import sqlalchemy as sa
from web3 import Web3

from oracles.chain import connect
from oracles.manifest import Manifest, read_manifest
from oracles.tables import CHAIN_AGREEMENT_TABLE, EVENT_TABLE
from tests.e2e.standalone_workers import (
    IN_FLIGHT_AFTER,
    Setup,
    held_by,
    queued_agreements,
    run_takeover_and_handback,
    standalone_setup,
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
    w3 = connect(setup.anvil.rpc_url)

    @cache
    def manifest() -> Manifest:
        """The deployment node-1 made (read once it is needed: node-1 is up by then)."""
        found = read_manifest(setup.data_dir / "deployments", w3.eth.chain_id)
        assert found is not None
        return found

    def unindexed() -> int:
        """Registry events the chain holds and the mirror does not yet."""
        on_chain = set(_registry_logs(w3, manifest()))
        return len(on_chain - set(_mirrored_logs(setup)))

    handover = run_takeover_and_handback(setup, "indexer", unindexed)

    # 3. Every CreditRegistry event mirrored exactly once; every agreement anchored.
    on_chain, mirrored = _registry_logs(w3, manifest()), _mirrored_logs(setup)
    assert len(mirrored) == len(set(mirrored)) == len(on_chain) == len(set(on_chain))
    assert set(mirrored) == set(on_chain)
    queued = queued_agreements(setup.database)
    assert len(queued) >= 2 * IN_FLIGHT_AFTER
    assert _anchored(setup) == queued
    assert set(handover.before_kill.approved) | set(handover.after_takeover.approved) <= queued

    handover.second.signal(signal.SIGTERM)
    assert handover.second.wait(60) == 0
    assert held_by(setup.database, "node-2") == []
    print(
        f"takeover {handover.takeover_s:.2f} s ({handover.pending_at_kill} events unindexed), "
        f"hand-back {handover.handback_s:.2f} s ({handover.pending_at_term} unindexed); "
        f"{len(on_chain)} events, {len(queued)} agreements"
    )
