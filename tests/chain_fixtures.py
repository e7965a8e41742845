"""pytest plugin: a test chain per worker, the built contracts, their deployment,
and a snapshot around every chain test.

Enable with `pytest_plugins = ["tests.chain_fixtures"]` in tests/conftest.py. Each
xdist worker is its own process, so session scope means one anvil per worker, on
a free port. `chain` reverts every test's changes (evm_snapshot / evm_revert), so
every test starts from the same freshly deployed state. Mark chain tests with
`@pytest.mark.chain`.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterator
from typing import Any

import pytest
from web3 import Web3
from web3.contract import Contract

from node_api.kernel.errors import ConfigurationError
from oracles.anvil import AnvilProcess, pick_free_port, revert_to_snapshot, take_snapshot
from oracles.chain import LocalAccounts, connect
from oracles.compiler import CompiledContracts, compile_contracts
from oracles.deploy import DeployContext, ensure_deployed
from oracles.manifest import Manifest

START_ATTEMPTS = 3
DEPLOY_PLAN_MODULE = "oracles.deploy_plan"


@pytest.fixture(scope="session")
def anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnvilProcess]:
    """One anvil for this worker, on a free port, with its state and log in a tmp dir."""
    state_dir = tmp_path_factory.mktemp("anvil")
    for attempt in range(START_ATTEMPTS):
        process = AnvilProcess(pick_free_port(), state_dir / "state.json")
        try:
            process.start()
            break
        except ConfigurationError:
            # Another worker may take the port between picking and binding: pick again.
            if attempt == START_ATTEMPTS - 1:
                raise
    yield process
    process.stop()


@pytest.fixture(scope="session")
def w3(anvil: AnvilProcess) -> Web3:
    return connect(anvil.rpc_url)


@pytest.fixture(scope="session")
def compiled() -> CompiledContracts:
    """The project's contracts/, compiled once per session (from build/ cache when unchanged)."""
    return compile_contracts()


@pytest.fixture(scope="session")
def dev_accounts() -> LocalAccounts:
    return LocalAccounts()


@pytest.fixture(scope="session")
def deploy_context(dev_accounts: LocalAccounts) -> DeployContext:
    """admin = account 0, relayer = 1, signers = 2, 3, 4, threshold 2, dispute window 1 h."""
    return DeployContext.for_development(dev_accounts)


@pytest.fixture(scope="session")
def deployed(
    w3: Web3,
    compiled: CompiledContracts,
    dev_accounts: LocalAccounts,
    deploy_context: DeployContext,
    tmp_path_factory: pytest.TempPathFactory,
) -> Manifest:
    """The network's contracts deployed by `oracles.deploy_plan.DEFAULT_PLAN`."""
    plan = importlib.import_module(DEPLOY_PLAN_MODULE).DEFAULT_PLAN
    manifest_dir = tmp_path_factory.mktemp("deployments")
    return ensure_deployed(
        w3, compiled, dev_accounts.deployer, plan, manifest_dir, context=deploy_context
    )


@pytest.fixture(scope="session")
def deployed_contracts(
    w3: Web3, compiled: CompiledContracts, deployed: Manifest
) -> dict[str, Contract]:
    """A web3 contract object for every deployed contract, by name."""
    contracts: dict[str, Any] = {
        name: w3.eth.contract(
            address=Web3.to_checksum_address(record.address), abi=compiled.artifact(name).abi
        )
        for name, record in deployed.contracts.items()
    }
    return contracts


@pytest.fixture
def chain(w3: Web3, deployed: Manifest) -> Iterator[Web3]:
    """The deployed chain; whatever the test changes is reverted afterwards."""
    snapshot_id = take_snapshot(w3)
    yield w3
    revert_to_snapshot(w3, snapshot_id)


@pytest.fixture
def w3_snapshot(w3: Web3) -> Iterator[Web3]:
    """The worker's chain without requiring the deployment; changes are reverted afterwards."""
    snapshot_id = take_snapshot(w3)
    yield w3
    revert_to_snapshot(w3, snapshot_id)
