"""Fixtures of the audit integration tests: one chain per test module with the clean
history built once, reverted to that point after every test, and an audit runner."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from web3.contract import Contract

from node_api.kernel.errors import ConfigurationError
from oracles.anvil import AnvilProcess, pick_free_port, revert_to_snapshot, take_snapshot
from oracles.audit.report import AuditReport
from oracles.audit.runner import AuditConfig, run_audit
from oracles.chain import LocalAccounts, connect
from oracles.compiler import CompiledContracts
from oracles.deploy import DeployContext, ensure_deployed
from oracles.deploy_plan import DEFAULT_PLAN
from oracles.manifest import get_manifest_path
from tests.integration.audit.scenario import (
    DISPUTE_WINDOW_S,
    Scenario,
    books_records,
    build_clean_history,
    write_export,
)

START_ATTEMPTS = 3


def _start_anvil(folder: Path) -> AnvilProcess:
    for attempt in range(START_ATTEMPTS):
        process = AnvilProcess(pick_free_port(), None, log_path=folder / "anvil.log")
        try:
            process.start()
            return process
        except ConfigurationError:
            if attempt == START_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def base_scenario(
    tmp_path_factory: pytest.TempPathFactory, compiled: CompiledContracts
) -> Iterator[Scenario]:
    folder = tmp_path_factory.mktemp("audit-chain")
    anvil = _start_anvil(folder)
    w3 = connect(anvil.rpc_url)
    accounts = LocalAccounts()
    context = DeployContext.for_development(accounts, dispute_window_s=DISPUTE_WINDOW_S)
    manifest = ensure_deployed(
        w3, compiled, accounts.deployer, DEFAULT_PLAN, folder / "deployments", context=context
    )
    contracts: dict[str, Contract] = {
        name: w3.eth.contract(address=record.address, abi=compiled.artifact(name).abi)  # type: ignore[call-overload]
        for name, record in manifest.contracts.items()
    }
    scenario = Scenario(
        anvil=anvil,
        w3=w3,
        manifest=manifest,
        manifest_path=get_manifest_path(folder / "deployments", manifest.chain_id),
        compiled=compiled,
        accounts=accounts,
        contracts=contracts,
    )
    build_clean_history(scenario)
    yield scenario
    anvil.stop()


@pytest.fixture
def scenario(base_scenario: Scenario) -> Iterator[Scenario]:
    """The clean history; whatever the test adds, on-chain or to the books, is undone
    afterwards."""
    snapshot_id = take_snapshot(base_scenario.w3)
    books, signers = copy.deepcopy(base_scenario.books), base_scenario.signer_indexes
    yield base_scenario
    revert_to_snapshot(base_scenario.w3, snapshot_id)
    base_scenario.books, base_scenario.signer_indexes = books, signers


AuditFn = Callable[..., AuditReport]


@pytest.fixture
def audit(tmp_path: Path) -> AuditFn:
    """`audit(scenario, records=None, **config)`: write the export (the faithful books by
    default) and audit the scenario's chain against it."""

    def run(
        scenario: Scenario, records: list[object] | None = None, **overrides: object
    ) -> AuditReport:
        export = write_export(
            tmp_path / "export.ndjson",
            scenario.manifest.chain_id,
            books_records(scenario) if records is None else records,  # type: ignore[arg-type]
        )
        settings: dict[str, object] = {
            "rpc_url": scenario.anvil.rpc_url,
            "manifest_path": scenario.manifest_path,
            "export_path": export,
            "sample_size": 10,
        }
        settings.update(overrides)
        return run_audit(AuditConfig(**settings))  # type: ignore[arg-type]

    return run
