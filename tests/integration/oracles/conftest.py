"""Fixtures of the oracle integration tests: a chain of the test's own (with a state
file, so it can be stopped and restarted), deployed by the network's plan. The shared
chain fixtures (`compiled` ...) come from the tests/chain_fixtures.py plugin.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3

from node_api.kernel.errors import ConfigurationError
from oracles.anvil import AnvilProcess, pick_free_port
from oracles.chain import LocalAccounts, connect
from oracles.compiler import CompiledContracts
from oracles.deploy import DeployContext, ensure_deployed
from oracles.deploy_plan import DEFAULT_PLAN
from oracles.manifest import Manifest

START_ATTEMPTS = 3


@dataclass
class OwnChain:
    """An anvil only this test uses, its deployment and where the manifest lives."""

    anvil: AnvilProcess
    manifest: Manifest
    manifest_dir: Path
    compiled: CompiledContracts
    relayer: LocalAccount

    def connect(self) -> Web3:
        return connect(self.anvil.rpc_url)


def start_anvil(state_path: Path, port: int | None = None) -> AnvilProcess:
    """anvil on a free port (or `port`), loading and dumping `state_path`."""
    for attempt in range(START_ATTEMPTS):
        process = AnvilProcess(port or pick_free_port(), state_path)
        try:
            process.start()
            return process
        except ConfigurationError:
            if port is not None or attempt == START_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


@pytest.fixture
def own_chain(tmp_path: Path, compiled: CompiledContracts) -> Iterator[OwnChain]:
    anvil = start_anvil(tmp_path / "chain" / "state.json")
    manifest_dir = tmp_path / "deployments"
    accounts = LocalAccounts()
    manifest = ensure_deployed(
        connect(anvil.rpc_url),
        compiled,
        accounts.deployer,
        DEFAULT_PLAN,
        manifest_dir,
        context=DeployContext.for_development(accounts),
    )
    chain = OwnChain(anvil, manifest, manifest_dir, compiled, accounts.relayer)
    yield chain
    chain.anvil.stop()
