"""Source verification: a deployment built from other sources than the published ones is
caught, as a full mismatch or as a partial (metadata-only) match."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from oracles.audit.export_format import ManifestRecord
from oracles.compiler import PROJECT_ROOT, compile_contracts
from oracles.deploy import DeployContext, ensure_deployed
from oracles.deploy_plan import DEFAULT_PLAN
from oracles.manifest import Manifest, get_manifest_path
from tests.integration.audit.conftest import AuditFn
from tests.integration.audit.scenario import DISPUTE_WINDOW_S, Scenario, check_of, failed_ids

pytestmark = pytest.mark.chain


def _deploy_from(scenario: Scenario, contracts_dir: Path | None, folder: Path) -> Path:
    """Deploy the plan from `contracts_dir` (None: the project's build) on the scenario's
    chain; the new manifest's path."""
    compiled = (
        scenario.compiled
        if contracts_dir is None
        else compile_contracts(contracts_dir, folder / "build")
    )
    context = DeployContext.for_development(scenario.accounts, dispute_window_s=DISPUTE_WINDOW_S)
    manifest = ensure_deployed(
        scenario.w3, compiled, scenario.admin, DEFAULT_PLAN, folder / "deployments", context=context
    )
    return get_manifest_path(folder / "deployments", manifest.chain_id)


def _modified_contracts(folder: Path, old: str, new: str) -> Path:
    contracts_dir = folder / "contracts"
    shutil.copytree(PROJECT_ROOT / "contracts", contracts_dir)
    source = contracts_dir / "ClearingHouse.sol"
    text = source.read_text(encoding="utf-8")
    assert old in text
    source.write_text(text.replace(old, new, 1), encoding="utf-8")
    return contracts_dir


def _empty_books(manifest_path: Path) -> list[object]:
    manifest = Manifest.model_validate_json(manifest_path.read_bytes())
    return [ManifestRecord(manifest=json.loads(manifest.model_dump_json()))]


def test_contract_redeployed_from_a_modified_source_fails_only_its_source_check(
    scenario: Scenario, audit: AuditFn, tmp_path: Path
) -> None:
    modified = _modified_contracts(
        tmp_path, "MAX_DISPUTE_WINDOW_SECONDS = 365 days", "MAX_DISPUTE_WINDOW_SECONDS = 366 days"
    )
    manifest_path = _deploy_from(scenario, modified, tmp_path)
    report = audit(scenario, _empty_books(manifest_path), manifest_path=manifest_path)
    assert failed_ids(report) == {"source.ClearingHouse"}
    check = check_of(report, "source.ClearingHouse")
    manifest = Manifest.model_validate_json(manifest_path.read_bytes())
    deployed = manifest.contracts["ClearingHouse"]
    assert "bytecode mismatch" in check.message and deployed.address in check.message
    assert "contracts/ClearingHouse.sol" in check.message
    (evidence,) = check.evidence
    assert (evidence.block, evidence.tx, evidence.address) == (
        deployed.deploy_block,
        deployed.deploy_tx,
        deployed.address,
    )
    assert evidence.values["match"] == "mismatch"
    assert evidence.values["chain_metadata_ipfs"] != evidence.values["build_metadata_ipfs"]
    assert evidence.values["constructor_args"]["disputeWindowSeconds"] == DISPUTE_WINDOW_S
    assert check_of(report, "source.CreditRegistry").passed


def test_comment_only_change_is_a_partial_match_that_passes_only_when_accepted(
    scenario: Scenario, audit: AuditFn, tmp_path: Path
) -> None:
    modified = _modified_contracts(
        tmp_path, "/// @title ClearingHouse", "/// @title ClearingHouse (v1)"
    )
    manifest_path = _deploy_from(scenario, modified, tmp_path)
    books = _empty_books(manifest_path)
    report = audit(scenario, books, manifest_path=manifest_path)
    assert failed_ids(report) == {"source.ClearingHouse"}
    assert "partial match" in check_of(report, "source.ClearingHouse").message
    accepted = audit(scenario, books, manifest_path=manifest_path, accept_partial=True)
    assert failed_ids(accepted) == set()
    assert check_of(accepted, "source.ClearingHouse").message.startswith("partial match")


def test_fresh_deployment_without_line_states_audits_green(
    scenario: Scenario, audit: AuditFn, tmp_path: Path
) -> None:
    manifest_path = _deploy_from(scenario, None, tmp_path)
    report = audit(scenario, _empty_books(manifest_path), manifest_path=manifest_path)
    assert failed_ids(report) == set()
    assert check_of(report, "reconcile.line_states").message.startswith(
        "no line-state commitments on-chain"
    )
    immutables = check_of(report, "source.ClearingHouse").evidence[0].values["immutables"]
    quorum = (
        Manifest.model_validate_json(manifest_path.read_bytes()).contracts["OracleQuorum"].address
    )
    assert immutables["ClearingHouse._quorum"] == "0x" + "00" * 12 + quorum[2:].lower()


def test_a_clearing_house_whose_claim_a_pause_can_stop_fails_only_the_exits_check(
    scenario: Scenario, audit: AuditFn, tmp_path: Path
) -> None:
    """Deployed from the very sources the auditor verifies (an exact match), but `claim`
    sits behind `whenNotPaused`: the verified source itself breaks the rule."""
    signature = "function claim(uint64 cycleId, uint32 partnerId) external nonReentrant"
    modified = _modified_contracts(tmp_path, f"{signature} {{", f"{signature} whenNotPaused {{")
    manifest_path = _deploy_from(scenario, modified, tmp_path)
    report = audit(
        scenario, _empty_books(manifest_path), manifest_path=manifest_path, contracts_dir=modified
    )
    assert failed_ids(report) == {"source.exits_never_paused"}
    assert check_of(report, "source.ClearingHouse").message.startswith("exact match")
    check = check_of(report, "source.exits_never_paused")
    assert check.message == (
        "1 exits a pause could stop; first: ClearingHouse.claim reaches _requireNotPaused, "
        "paused, whenNotPaused: a pause would stop it"
    )
    deployed = Manifest.model_validate_json(manifest_path.read_bytes()).contracts["ClearingHouse"]
    (evidence,) = check.evidence
    assert (evidence.block, evidence.tx, evidence.address) == (
        deployed.deploy_block,
        deployed.deploy_tx,
        deployed.address,
    )
