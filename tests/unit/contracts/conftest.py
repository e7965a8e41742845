"""Fixtures of the contract tests: the four network contracts deployed by the tests' own
helper (`deploy_network`, not the node's deploy plan), reverted after every test, with the
parts each dev account plays.

The chain fixtures (one anvil per worker, `w3_snapshot`) come from tests/chain_fixtures.py
(a plugin of tests/conftest.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from web3 import Web3

from oracles.chain import LocalAccounts
from oracles.compiler import CompiledContracts
from tests.unit.contracts.helpers import Network, deploy_network


@pytest.fixture(scope="session")
def network(w3: Web3, compiled: CompiledContracts, dev_accounts: LocalAccounts) -> Network:
    """The deployed contracts and the accounts playing each part (deployed once per worker)."""
    return deploy_network(w3, compiled, dev_accounts)


@pytest.fixture
def net(network: Network, w3_snapshot: Web3) -> Iterator[Network]:
    """The network, with every change the test makes reverted afterwards."""
    yield network
