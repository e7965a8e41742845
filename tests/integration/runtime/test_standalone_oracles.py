"""`creditnet relayer` and `creditnet indexer` take the same worker leases as `creditnet
up`: run beside a node on the same database, they wait while the node holds a worker's
lease, take it when the node gives it up, and hand it back when they stop."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from node_api.kernel.outbox import get_utc_now
from node_api.runtime.background import start_oracle_workers
from node_api.runtime.boot import ChainRuntime
from oracles.anvil import AnvilProcess
from oracles.chain import LocalAccounts, connect
from oracles.compiler import CompiledContracts
from oracles.leases import LeaseStore
from oracles.manifest import Manifest

pytestmark = pytest.mark.chain

WORKERS = ("relayer", "indexer")
TTL_S = 2.0
"""The standalone process's lease time to live: it retries every quarter of it."""


def _holders(leases: LeaseStore) -> dict[str, str]:
    now_held: dict[str, str] = {}
    for name in WORKERS:
        lease = leases.fetch(name)
        if lease is not None and lease.expires_at > get_utc_now():
            now_held[name] = lease.holder
    return now_held


def test_a_standalone_relayer_and_indexer_wait_for_the_node_then_take_over(
    database: Database,
    anvil: AnvilProcess,
    compiled: CompiledContracts,
    deployed: Manifest,
    dev_accounts: LocalAccounts,
    tmp_path: Path,
) -> None:
    w3 = connect(anvil.rpc_url)
    chain = ChainRuntime(
        w3=w3,
        rpc_url=anvil.rpc_url,
        chain_id=w3.eth.chain_id,
        deployer=dev_accounts.deployer,
        relayer=dev_accounts.relayer,
        signers=dev_accounts.signers(3),
        compiled=compiled,
        manifest=deployed,
    )
    node = LeaseStore(database, "node-a", 60.0)
    epochs = {name: node.try_acquire(name) for name in WORKERS}
    assert epochs == {"relayer": 1, "indexer": 1}

    settings = Settings(data_dir=tmp_path, node_id="standalone", lease_ttl_s=TTL_S)
    workers = start_oracle_workers(settings, database, chain, relay=True, index=True)
    try:
        time.sleep(TTL_S)
        assert _holders(node) == {"relayer": "node-a", "indexer": "node-a"}, (
            "a standalone worker ran while the node held its lease"
        )
        for name in WORKERS:
            node.release(name, 1)
        deadline = time.monotonic() + 5 * TTL_S
        while _holders(node) != {"relayer": "standalone", "indexer": "standalone"}:
            assert time.monotonic() < deadline, f"not taken over: {_holders(node)}"
            time.sleep(0.1)
        assert {name: node.fetch(name).epoch for name in WORKERS} == {  # type: ignore[union-attr]
            "relayer": 2,
            "indexer": 2,
        }
    finally:
        workers.stop()
    assert _holders(node) == {}, "a stopped standalone worker kept its lease"
    assert {name: node.try_acquire(name) for name in WORKERS} == {"relayer": 3, "indexer": 3}
