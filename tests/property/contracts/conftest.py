"""Fixtures of the contract property tests: the same deployed network as the contract
unit tests (tests/unit/contracts/conftest.py), found here by name."""

from __future__ import annotations

from tests.unit.contracts import conftest as contract_fixtures

anvil = contract_fixtures.anvil
w3 = contract_fixtures.w3
compiled = contract_fixtures.compiled
dev_accounts = contract_fixtures.dev_accounts
deploy_context = contract_fixtures.deploy_context
deployed = contract_fixtures.deployed
deployed_contracts = contract_fixtures.deployed_contracts
chain = contract_fixtures.chain
network = contract_fixtures.network
net = contract_fixtures.net
