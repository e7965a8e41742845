"""Deployment by plan, the manifest, reuse vs redeploy, and bytecode verification."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from node_api.kernel.chain import ContractName
from node_api.kernel.errors import ConfigurationError
from oracles.chain import LocalAccounts
from oracles.compiler import CompiledContracts, ImmutableReference, compile_contracts
from oracles.deploy import (
    DeployContext,
    DeployStep,
    Mismatch,
    PlanItem,
    PostDeployCall,
    compute_masked_code,
    ensure_deployed,
    verify_deployment,
)
from oracles.manifest import Manifest, get_manifest_path
from tests.unit.oracles.counter import COUNTER_SOURCE, read_count, write_contracts

pytestmark = pytest.mark.chain


def counter_args(start: int) -> Any:
    def args(addresses: dict[str, str], context: DeployContext) -> list[Any]:
        return [context.admin, start]

    return args


COUNTER_PLAN: tuple[PlanItem, ...] = (
    DeployStep("Counter", counter_args(41)),
    PostDeployCall("Counter", "increment"),
)


@pytest.fixture(scope="module")
def changed_counter_compiled(
    tmp_path_factory: pytest.TempPathFactory, build_dir: Path
) -> CompiledContracts:
    """Counter with one comment added: same behaviour, new source hash and metadata hash."""
    changed = COUNTER_SOURCE + "// changed after deployment\n"
    contracts_dir = write_contracts(tmp_path_factory.mktemp("changed"), {"Counter.sol": changed})
    return compile_contracts(contracts_dir, build_dir)


def deploy(
    w3: Web3,
    compiled: CompiledContracts,
    accounts: LocalAccounts,
    manifest_dir: Path,
    plan: tuple[PlanItem, ...] = COUNTER_PLAN,
) -> Manifest:
    context = DeployContext.for_development(accounts)
    return ensure_deployed(w3, compiled, accounts.deployer, plan, manifest_dir, context=context)


def set_code(w3: Web3, address: str, code_hex: str) -> None:
    w3.provider.make_request("anvil_setCode", [address, code_hex])  # type: ignore[arg-type]


def test_ensure_deployed_runs_the_plan_and_writes_the_manifest(
    w3_snapshot: Web3,
    counter_compiled: CompiledContracts,
    dev_accounts: LocalAccounts,
    tmp_path: Path,
) -> None:
    manifest = deploy(w3_snapshot, counter_compiled, dev_accounts, tmp_path)

    counter = manifest.contracts["Counter"]
    assert read_count(w3_snapshot, counter_compiled, counter.address) == 42
    assert counter.constructor_args == "0x" + (
        dev_accounts.deployer.address[2:].lower().rjust(64, "0") + hex(41)[2:].rjust(64, "0")
    )
    assert [call.function for call in manifest.post_deploy_calls] == ["increment"]
    assert manifest.created_at_block == manifest.post_deploy_calls[0].block
    assert manifest.created_at_block > counter.deploy_block
    assert manifest.source_hashes == counter_compiled.source_hashes
    assert manifest.compiler_version == counter_compiled.compiler_version
    assert manifest.deployer == dev_accounts.deployer.address
    stored = json.loads(get_manifest_path(tmp_path, 31337).read_text())
    assert Manifest.model_validate(stored) == manifest
    # The owner immutable is filled on-chain, zero in the artifact: still a match.
    assert verify_deployment(w3_snapshot, counter_compiled, manifest) == []


def test_ensure_deployed_reuses_the_manifest_when_build_plan_and_code_match(
    w3_snapshot: Web3,
    counter_compiled: CompiledContracts,
    dev_accounts: LocalAccounts,
    tmp_path: Path,
) -> None:
    first = deploy(w3_snapshot, counter_compiled, dev_accounts, tmp_path)
    block = w3_snapshot.eth.block_number

    second = deploy(w3_snapshot, counter_compiled, dev_accounts, tmp_path)

    assert second == first
    assert w3_snapshot.eth.block_number == block
    assert sorted(p.name for p in tmp_path.iterdir()) == ["31337.json"]


def test_ensure_deployed_redeploys_and_keeps_history_when_a_source_changes(
    w3_snapshot: Web3,
    counter_compiled: CompiledContracts,
    changed_counter_compiled: CompiledContracts,
    dev_accounts: LocalAccounts,
    tmp_path: Path,
) -> None:
    old = deploy(w3_snapshot, counter_compiled, dev_accounts, tmp_path)

    new = deploy(w3_snapshot, changed_counter_compiled, dev_accounts, tmp_path)

    assert new.get_address("Counter") != old.get_address("Counter")
    assert new.source_hashes == changed_counter_compiled.source_hashes
    history = tmp_path / f"31337.{old.created_at_block}.json"
    assert Manifest.model_validate_json(history.read_text()) == old
    assert verify_deployment(w3_snapshot, changed_counter_compiled, new) == []


def test_ensure_deployed_redeploys_when_plan_arguments_change(
    w3_snapshot: Web3,
    counter_compiled: CompiledContracts,
    dev_accounts: LocalAccounts,
    tmp_path: Path,
) -> None:
    old = deploy(w3_snapshot, counter_compiled, dev_accounts, tmp_path)
    plan = (DeployStep("Counter", counter_args(7)), PostDeployCall("Counter", "increment"))

    new = deploy(w3_snapshot, counter_compiled, dev_accounts, tmp_path, plan)

    assert new.get_address("Counter") != old.get_address("Counter")
    assert read_count(w3_snapshot, counter_compiled, new.get_address("Counter")) == 8


def test_verify_deployment_catches_code_changed_at_an_address(
    w3_snapshot: Web3,
    counter_compiled: CompiledContracts,
    changed_counter_compiled: CompiledContracts,
    dev_accounts: LocalAccounts,
    tmp_path: Path,
) -> None:
    manifest = deploy(w3_snapshot, counter_compiled, dev_accounts, tmp_path)
    address = manifest.get_address("Counter")
    # Only the metadata hash differs: the code would behave the same, yet it is not ours.
    set_code(w3_snapshot, address, changed_counter_compiled.artifact("Counter").deployed_bytecode)

    mismatches = verify_deployment(w3_snapshot, counter_compiled, manifest)
    redeployed = deploy(w3_snapshot, counter_compiled, dev_accounts, tmp_path)

    assert mismatches == [Mismatch("Counter", address, "code differs from the build")]
    assert redeployed.get_address("Counter") != address


def test_verify_deployment_catches_missing_code_and_wrong_chain(
    w3_snapshot: Web3,
    counter_compiled: CompiledContracts,
    dev_accounts: LocalAccounts,
    tmp_path: Path,
) -> None:
    manifest = deploy(w3_snapshot, counter_compiled, dev_accounts, tmp_path)
    address = manifest.get_address("Counter")
    set_code(w3_snapshot, address, "0x")

    assert verify_deployment(w3_snapshot, counter_compiled, manifest) == [
        Mismatch("Counter", address, "no code at the address")
    ]
    other_chain = manifest.model_copy(update={"chain_id": 1})
    assert [m.contract for m in verify_deployment(w3_snapshot, counter_compiled, other_chain)] == [
        "*"
    ]


def test_compute_masked_code_ignores_immutables_only(counter_compiled: CompiledContracts) -> None:
    artifact = counter_compiled.artifact("Counter").model_copy(
        update={"immutable_references": {"1": [ImmutableReference(start=2, length=3)]}}
    )
    code = bytes(range(10))
    other_immutable = code[:2] + b"\xff\xff\xff" + code[5:]
    other_elsewhere = b"\xff" + code[1:]

    assert compute_masked_code(code, artifact) == compute_masked_code(other_immutable, artifact)
    assert compute_masked_code(code, artifact) != compute_masked_code(other_elsewhere, artifact)


def test_RevertWhen_plan_calls_a_contract_before_deploying_it(
    w3_snapshot: Web3,
    counter_compiled: CompiledContracts,
    dev_accounts: LocalAccounts,
    tmp_path: Path,
) -> None:
    plan = (PostDeployCall("Counter", "increment"), DeployStep("Counter", counter_args(1)))

    with pytest.raises(ConfigurationError, match=r"Counter\.increment before Counter"):
        deploy(w3_snapshot, counter_compiled, dev_accounts, tmp_path, plan)


def test_RevertWhen_plan_arguments_need_an_undeployed_contract(
    w3_snapshot: Web3,
    counter_compiled: CompiledContracts,
    dev_accounts: LocalAccounts,
    tmp_path: Path,
) -> None:
    plan = (DeployStep("Counter", lambda addresses, context: [addresses["Registry"], 1]),)

    with pytest.raises(ConfigurationError, match="needs contract Registry"):
        deploy(w3_snapshot, counter_compiled, dev_accounts, tmp_path, plan)


def test_RevertWhen_manifest_is_corrupt(
    w3_snapshot: Web3,
    counter_compiled: CompiledContracts,
    dev_accounts: LocalAccounts,
    tmp_path: Path,
) -> None:
    get_manifest_path(tmp_path, 31337).write_text('{"chain_id": "x"}')

    with pytest.raises(ConfigurationError, match="not a valid deployment manifest"):
        deploy(w3_snapshot, counter_compiled, dev_accounts, tmp_path)


def test_default_plan_deploys_contracts_that_verify(
    chain: Web3, compiled: CompiledContracts, deployed: Manifest
) -> None:
    from oracles.deploy_plan import DEFAULT_PLAN

    assert list(deployed.contracts) == [s.name for s in DEFAULT_PLAN if isinstance(s, DeployStep)]
    assert verify_deployment(chain, compiled, deployed) == []


def test_a_network_with_its_own_settlement_asset_uses_it_instead_of_the_dev_token(
    chain: Web3,
    compiled: CompiledContracts,
    deployed: Manifest,
    deploy_context: DeployContext,
    dev_accounts: LocalAccounts,
    tmp_path: Path,
) -> None:
    from oracles.deploy_plan import network_plan

    w3 = chain
    asset = deployed.get_address(ContractName.SETTLEMENT_TOKEN)  # any ERC-20 will do
    context = replace(deploy_context, settlement_token=str(asset))
    plan = network_plan(context)
    manifest = ensure_deployed(
        w3, compiled, dev_accounts.deployer, plan, tmp_path / "net", context=context
    )
    token = manifest.contracts[ContractName.SETTLEMENT_TOKEN]
    assert token.external and token.address == asset and token.deploy_tx == ""
    house = w3.eth.contract(
        address=manifest.get_address(ContractName.CLEARING_HOUSE),
        abi=compiled.artifact(ContractName.CLEARING_HOUSE).abi,
    )
    assert house.functions.settlementToken().call() == asset
    assert verify_deployment(w3, compiled, manifest) == []
    again = ensure_deployed(
        w3, compiled, dev_accounts.deployer, plan, tmp_path / "net", context=context
    )
    assert again == manifest  # reused, not redeployed
