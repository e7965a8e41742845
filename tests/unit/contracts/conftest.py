"""Fixtures of the contract tests: the network deployed by DEFAULT_PLAN, reverted after
every test, with the parts each dev account plays.

The chain fixtures come from tests/chain_fixtures.py; they are imported rather than
named in `pytest_plugins`, which pytest accepts only in the top-level conftest.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from web3 import Web3
from web3.contract import Contract

from oracles.chain import LocalAccounts
from oracles.compiler import CompiledContracts
from oracles.deploy import DeployContext
from tests import chain_fixtures
from tests.unit.contracts.helpers import Network, build_error_table

FIRST_PARTNER_INDEX = 5
PARTNER_COUNT = 4
OUTSIDER_INDEX = 9

# pytest finds fixtures by name in this module.
anvil = chain_fixtures.anvil
w3 = chain_fixtures.w3
compiled = chain_fixtures.compiled
dev_accounts = chain_fixtures.dev_accounts
deploy_context = chain_fixtures.deploy_context
deployed = chain_fixtures.deployed
deployed_contracts = chain_fixtures.deployed_contracts
chain = chain_fixtures.chain


@pytest.fixture(scope="session")
def network(
    w3: Web3,
    compiled: CompiledContracts,
    deployed_contracts: dict[str, Contract],
    dev_accounts: LocalAccounts,
    deploy_context: DeployContext,
) -> Network:
    """The deployed contracts and accounts: admin 0, relayer 1, signers 2-4, partners 5-8,
    an outsider with no role 9."""
    return Network(
        w3=w3,
        compiled=compiled,
        token=deployed_contracts["SettlementToken"],
        quorum=deployed_contracts["OracleQuorum"],
        registry=deployed_contracts["CreditRegistry"],
        clearing_house=deployed_contracts["ClearingHouse"],
        admin=dev_accounts.deployer,
        relayer=dev_accounts.relayer,
        signers=dev_accounts.signers(len(deploy_context.signers)),
        threshold=deploy_context.threshold,
        partners=[dev_accounts.account(FIRST_PARTNER_INDEX + i) for i in range(PARTNER_COUNT)],
        outsider=dev_accounts.account(OUTSIDER_INDEX),
        chain_id=w3.eth.chain_id,
        errors=build_error_table(compiled),
    )


@pytest.fixture
def net(network: Network, chain: Web3) -> Iterator[Network]:
    """The network, with every change the test makes reverted afterwards."""
    yield network
