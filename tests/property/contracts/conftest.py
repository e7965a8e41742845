"""Fixtures of the contract property tests: the same deployed network as the contract
unit tests (tests/unit/contracts/conftest.py), found here by name. The chain fixtures
themselves come from tests/chain_fixtures.py, a plugin of tests/conftest.py."""

from __future__ import annotations

from tests.unit.contracts import conftest as contract_fixtures

network = contract_fixtures.network
net = contract_fixtures.net
