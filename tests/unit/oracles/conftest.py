"""Chain fixtures for the oracles tests, and the compiled test-only Counter.

The chain fixtures come from tests/chain_fixtures.py. They are imported here
rather than named in `pytest_plugins`, which pytest accepts only in the top-level
conftest; once tests/conftest.py enables the plugin, the import below can go.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from oracles.compiler import CompiledContracts, compile_contracts
from tests.chain_fixtures import (  # noqa: F401 - fixtures are found by name
    anvil,
    chain,
    compiled,
    deploy_context,
    deployed,
    deployed_contracts,
    dev_accounts,
    w3,
    w3_snapshot,
)
from tests.unit.oracles.counter import COUNTER_SOURCE, write_contracts


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A build cache shared by this session's tests (never the project's build/)."""
    return tmp_path_factory.mktemp("build")


@pytest.fixture(scope="session")
def counter_compiled(
    tmp_path_factory: pytest.TempPathFactory, build_dir: Path
) -> CompiledContracts:
    contracts_dir = write_contracts(
        tmp_path_factory.mktemp("counter"), {"Counter.sol": COUNTER_SOURCE}
    )
    return compile_contracts(contracts_dir, build_dir)
