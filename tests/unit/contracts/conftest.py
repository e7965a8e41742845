"""Fixtures of the contract tests: the network deployed by DEFAULT_PLAN, reverted after
every test, with the parts each dev account plays.

The chain fixtures come from tests/chain_fixtures.py (a plugin of tests/conftest.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from web3 import Web3
from web3.contract import Contract

from oracles.chain import LocalAccounts
from oracles.compiler import CompiledContracts
from oracles.deploy import DeployContext
from tests.unit.contracts.helpers import Network, build_network


@pytest.fixture(scope="session")
def network(
    w3: Web3,
    compiled: CompiledContracts,
    deployed_contracts: dict[str, Contract],
    dev_accounts: LocalAccounts,
    deploy_context: DeployContext,
) -> Network:
    """The deployed contracts and the accounts playing each part."""
    return build_network(w3, compiled, deployed_contracts, dev_accounts, deploy_context)


@pytest.fixture
def net(network: Network, chain: Web3) -> Iterator[Network]:
    """The network, with every change the test makes reverted afterwards."""
    yield network
