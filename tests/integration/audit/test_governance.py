"""Governance on a real chain: the timelock's operations in the report, and an admin
action or a deployment that bypasses the timelock caught by exactly the check for it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from web3 import Web3

from oracles.audit.export_format import ManifestRecord
from oracles.chain import send_transaction
from oracles.deploy import DeployContext, PlanItem, PostDeployCall, ensure_deployed
from oracles.deploy_plan import DEFAULT_PLAN
from oracles.manifest import get_manifest_path
from tests.integration.audit.conftest import AuditFn
from tests.integration.audit.scenario import (
    DISPUTE_WINDOW_S,
    GOVERNANCE_DELAY_S,
    Scenario,
    check_of,
    failed_ids,
)

pytestmark = pytest.mark.chain

ADMIN_ROLE = bytes(32)
ANYONE = "0x" + "00" * 20


def _new_signers(scenario: Scenario) -> list[str]:
    return [str(scenario.accounts.account(index).address) for index in (10, 11, 12)]


def test_clean_history_reports_the_timelock_and_every_operation(
    scenario: Scenario, audit: AuditFn
) -> None:
    report = audit(scenario)
    assert failed_ids(report) == set()
    timelock = scenario.contracts["NetworkTimelock"].address
    governance = report.governance
    assert governance is not None
    assert (governance.timelock, governance.min_delay_s) == (timelock, GOVERNANCE_DELAY_S)
    assert governance.proposers == governance.cancellers == [scenario.admin.address]
    assert governance.executors == [ANYONE]
    assert governance.admins == {
        name: [timelock] for name in ("OracleQuorum", "CreditRegistry", "ClearingHouse")
    }
    operations = governance.operations
    assert [op.calls[0].description for op in operations] == [
        "ClearingHouse.resolveDispute(20250228, false)",
        "CreditRegistry.pause()",
        "CreditRegistry.unpause()",
    ]
    assert {op.state for op in operations} == {"executed"}
    assert all(op.delay_s == op.min_delay_s == GOVERNANCE_DELAY_S for op in operations)
    (resolution,) = [a for a in report.admin_actions if a.function == "resolveDispute"]
    assert (resolution.sender, resolution.operation) == (timelock, operations[0].operation_id)
    scheduled = [a for a in report.admin_actions if a.function == "schedule"]
    assert [a.sender for a in scheduled] == [scenario.admin.address] * 3
    assert check_of(report, "governance.admin_via_timelock").message.startswith(
        "3 admin actions after the deployment, all executed by the timelock"
    )
    handover = check_of(report, "governance.handover")
    assert handover.evidence[0].values["min_delay_s"] == GOVERNANCE_DELAY_S
    document = report.to_json()["governance"]
    assert document is not None and document["operations"][0]["state"] == "executed"


def test_a_cancelled_operation_is_in_the_timeline_and_fails_nothing(
    scenario: Scenario, audit: AuditFn
) -> None:
    house = scenario.contracts["ClearingHouse"]
    call = [house.address, 0, house.encode_abi("pause", args=[]), bytes(32), bytes(32)]
    scenario.send(scenario.admin, "NetworkTimelock", "schedule", *call, GOVERNANCE_DELAY_S)
    operation_id = scenario.contracts["NetworkTimelock"].functions.hashOperation(*call).call()
    receipt = scenario.send(scenario.admin, "NetworkTimelock", "cancel", operation_id)
    report = audit(scenario)
    assert failed_ids(report) == set()
    assert report.governance is not None
    cancelled = report.governance.operations[-1]
    assert (cancelled.state, cancelled.calls[0].description) == (
        "cancelled",
        "ClearingHouse.pause()",
    )
    assert cancelled.cancelled is not None
    assert cancelled.cancelled.tx == receipt["transactionHash"].to_0x_hex()
    (action,) = [a for a in report.admin_actions if a.function == "cancel"]
    assert action.description.endswith(": ClearingHouse.pause()")


def test_an_admin_action_bypassing_the_timelock_fails_only_the_admin_check(
    scenario: Scenario, audit: AuditFn
) -> None:
    """The timelock hands an admin role back to an account (in public, after the delay);
    that account's direct signer-set change is then flagged."""
    scenario.govern("OracleQuorum", "grantRole", ADMIN_ROLE, scenario.admin.address)
    new_signers = _new_signers(scenario)
    receipt = scenario.send(scenario.admin, "OracleQuorum", "setSigners", new_signers, 2)
    report = audit(scenario, allowlist=tuple(new_signers))
    assert failed_ids(report) == {"governance.admin_via_timelock"}
    check = check_of(report, "governance.admin_via_timelock")
    assert check.message.startswith(
        "1 admin actions bypassed the timelock; first: OracleQuorum.setSigners sent directly "
        f"by {scenario.admin.address}, not through the timelock: signer set v2"
    )
    (evidence,) = check.evidence
    assert (evidence.block, evidence.tx, evidence.address) == (
        receipt["blockNumber"],
        receipt["transactionHash"].to_0x_hex(),
        scenario.contracts["OracleQuorum"].address,
    )


def _without_renounces(plan: tuple[PlanItem, ...]) -> tuple[PlanItem, ...]:
    return tuple(
        item
        for item in plan
        if not (isinstance(item, PostDeployCall) and item.function == "renounceRole")
    )


def test_a_deployment_that_kept_the_deployer_as_admin_fails_the_handover(
    scenario: Scenario, audit: AuditFn, tmp_path: Path
) -> None:
    context = DeployContext.for_development(scenario.accounts, dispute_window_s=DISPUTE_WINDOW_S)
    manifest = ensure_deployed(
        scenario.w3,
        scenario.compiled,
        scenario.admin,
        _without_renounces(DEFAULT_PLAN),
        tmp_path / "deployments",
        context=context,
    )
    manifest_path = get_manifest_path(tmp_path / "deployments", manifest.chain_id)
    quorum = manifest.contracts["OracleQuorum"].address
    new_signers = _new_signers(scenario)
    data = scenario.contracts["OracleQuorum"].encode_abi("setSigners", args=[new_signers, 2])
    receipt = send_transaction(
        scenario.w3, scenario.admin, {"to": Web3.to_checksum_address(quorum), "data": data}
    )
    books = [ManifestRecord(manifest=json.loads(manifest.model_dump_json()))]
    report = audit(scenario, books, manifest_path=manifest_path, allowlist=tuple(new_signers))
    assert failed_ids(report) == {"governance.handover", "governance.admin_via_timelock"}
    handover = check_of(report, "governance.handover")
    assert handover.message.startswith(
        f"3 handover problems; first: the deployer {scenario.admin.address} still holds "
        "DEFAULT_ADMIN_ROLE on OracleQuorum after the deployment's last call"
    )
    assert {e.address for e in handover.evidence} == {
        manifest.contracts[name].address
        for name in ("OracleQuorum", "CreditRegistry", "ClearingHouse")
    }
    bypass = check_of(report, "governance.admin_via_timelock")
    assert bypass.evidence[0].tx == receipt["transactionHash"].to_0x_hex()
