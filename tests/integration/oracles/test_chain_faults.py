"""Chain faults while the relayer and indexer run as background workers: the RPC refusing
connections for a while, and anvil stopped and restarted from its state file. Afterwards
every item is on-chain once and recorded, and the indexer holds exactly the canonical
events."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from node_api.kernel.db import Database
from node_api.kernel.outbox_table import OUTBOX_TABLE, OutboxStatus
from oracles.event_store import BlockRef
from oracles.indexer import FOLLOWED_CONTRACTS, fetch_indexer_checkpoint
from oracles.tables import CHAIN_AGREEMENT_TABLE
from oracles.workers import WorkerLoop
from tests.integration.oracles.conftest import OwnChain, start_anvil
from tests.integration.oracles.tcp_proxy import TcpProxy
from tests.unit.oracles.oracle_helpers import (
    count_opened_on_chain,
    enqueue_all,
    fetch_chain_event_keys,
    fetch_event_keys,
    fetch_outbox,
    make_indexer,
    make_opening,
    make_relayer,
)

pytestmark = [pytest.mark.chain, pytest.mark.slow]

ITEM_COUNT = 600
OUTAGE_S = 2.0
SETTLE_S = 0.5
"""Time for a transaction anvil received before the cut-off to be mined and answered."""
_NO_BLOCK = BlockRef(-1, "", "")


def _confirmed(database: Database) -> int:
    with database.engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(OUTBOX_TABLE)
                .where(OUTBOX_TABLE.c.status == OutboxStatus.CONFIRMED.value)
            ).scalar_one()
        )


def _wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_workers_ride_out_refused_connections_and_an_anvil_restart(
    database: Database, own_chain: OwnChain
) -> None:
    enqueue_all(database, [make_opening(n) for n in range(ITEM_COUNT)])
    with TcpProxy(own_chain.anvil.port) as proxy:
        manifest, compiled_contracts = own_chain.manifest, own_chain.compiled
        relayer = make_relayer(
            database,
            proxy.url,
            manifest,
            compiled_contracts,
            own_chain.relayer,
            batch_size_max=10,
            inflight_max=2,
        )
        indexer = make_indexer(
            database, proxy.url, manifest, compiled_contracts, range_max_blocks=5
        )
        loops = [
            WorkerLoop("relayer", relayer.step, idle_s=0.05, backoff_max_s=0.5),
            WorkerLoop("indexer", indexer.step, idle_s=0.05, backoff_max_s=0.5),
        ]
        for loop in loops:
            loop.start()
        try:
            _wait_for(lambda: _confirmed(database) >= 100, 60, "100 confirmed")
            proxy.refuse()
            time.sleep(OUTAGE_S)
            proxy.resume()
            _wait_for(lambda: _confirmed(database) >= 300, 60, "300 confirmed")
            state_path = own_chain.anvil.state_path
            assert state_path is not None
            # anvil dumps its state when it gets SIGTERM and can still mine a transaction
            # that reaches it after the dump, which the restart then forgets (a real chain
            # keeps what it mined): cut the workers off first, so the restart loses
            # nothing they were told was mined.
            proxy.refuse()
            time.sleep(SETTLE_S)
            own_chain.anvil.stop()
            time.sleep(OUTAGE_S)
            own_chain.anvil = start_anvil(state_path, port=own_chain.anvil.port)
            proxy.resume()
            _wait_for(lambda: _confirmed(database) == ITEM_COUNT, 90, "all confirmed")
            w3 = own_chain.connect()
            _wait_for(
                lambda: (
                    (fetch_indexer_checkpoint(database) or _NO_BLOCK).number == w3.eth.block_number
                ),
                60,
                "indexer caught up",
            )
        finally:
            for loop in loops:
                loop.stop()
    assert all(loop.errors > 0 for loop in loops), [loop.last_error for loop in loops]

    rows = fetch_outbox(database)
    assert {row.status for row in rows} == {OutboxStatus.CONFIRMED}
    assert all(row.tx_hash and row.block_number for row in rows)
    counts = count_opened_on_chain(
        w3, manifest.get_address("CreditRegistry"), manifest.created_at_block
    )
    assert len(counts) == ITEM_COUNT and set(counts.values()) == {1}
    first_block = min(c.deploy_block for c in manifest.contracts.values())
    addresses = [manifest.get_address(name) for name in FOLLOWED_CONTRACTS]
    assert fetch_event_keys(database) == fetch_chain_event_keys(w3, addresses, first_block)
    with database.engine.connect() as conn:
        anchored = conn.execute(
            sa.select(sa.func.count()).select_from(CHAIN_AGREEMENT_TABLE)
        ).scalar()
    assert anchored == ITEM_COUNT
