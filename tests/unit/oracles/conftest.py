"""Chain fixtures for the oracles tests, and the compiled test-only Counter.

The chain fixtures come from tests/chain_fixtures.py (a plugin of tests/conftest.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from oracles.compiler import CompiledContracts, compile_contracts
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
