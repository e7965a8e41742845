"""Each kind of tampering makes exactly the check that must catch it fail, with a
message that points at the evidence (cycle, block, transaction, values)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from web3 import Web3
from web3.types import TxReceipt

from oracles.audit.export_format import ProductTermsRecord
from settlement.entries import SettlementEntry
from tests.integration.audit.conftest import AuditFn
from tests.integration.audit.scenario import (
    RELAYER_ROLE,
    Scenario,
    books_records,
    check_of,
    commit_line_state,
    failed_ids,
    propose,
    settle_cycle,
)

pytestmark = pytest.mark.chain

UNKNOWN_ADDRESS = Web3.to_checksum_address("0x" + "5a" * 20)


def _tampered_entries(scenario: Scenario, cycle_id: int, delta_fen: int) -> list[SettlementEntry]:
    """The cycle's entries with one amount moved between two entries of the same cycle, so
    the books still balance: only the signed root can tell."""
    entries = list(scenario.books.cycles[cycle_id].entries)
    first, second = entries[0], entries[-1]
    entries[0] = replace(first, amount_fen=first.amount_fen + delta_fen)
    entries[-1] = replace(second, amount_fen=second.amount_fen - delta_fen)
    return entries


def test_ledger_entry_changed_after_signing_fails_only_the_cycle_roots_check(
    scenario: Scenario, audit: AuditFn
) -> None:
    cycle_id = 20250131
    records = books_records(
        scenario, entries_override={cycle_id: _tampered_entries(scenario, cycle_id, 100)}
    )
    report = audit(scenario, records)
    assert failed_ids(report) == {"reconcile.cycle_roots"}
    check = check_of(report, "reconcile.cycle_roots")
    signed_root = "0x" + scenario.books.cycles[cycle_id].root.hex()
    assert f"cycle {cycle_id}" in check.message and signed_root in check.message
    (evidence,) = check.evidence
    proposal = _proposal_receipt(scenario, cycle_id)
    assert (evidence.block, evidence.tx) == (
        proposal["blockNumber"],
        proposal["transactionHash"].to_0x_hex(),
    )
    assert evidence.address == scenario.contracts["ClearingHouse"].address
    assert evidence.values["chain_root"] == signed_root != evidence.values["recomputed_root"]
    assert evidence.values["declared_root"] == signed_root
    assert set(evidence.values["partners_differing"]) == {"1", "4"}


def _proposal_receipt(scenario: Scenario, cycle_id: int) -> TxReceipt:
    house = scenario.contracts["ClearingHouse"]
    (log,) = house.events.CycleProposed().get_logs(
        from_block=0, argument_filters={"cycleId": cycle_id}
    )
    return scenario.w3.eth.get_transaction_receipt(log["transactionHash"])


def test_cycle_root_no_export_reproduces_fails_only_the_cycle_coverage_check(
    scenario: Scenario, audit: AuditFn
) -> None:
    books_before = books_records(scenario)
    stray = settle_cycle(scenario, 20250430, {1: [4_000], 3: [-4_000]})
    propose(scenario, stray, submitter=scenario.outsider)
    report = audit(scenario, books_before)
    assert failed_ids(report) == {"reconcile.cycle_coverage"}
    check = check_of(report, "reconcile.cycle_coverage")
    root = "0x" + stray.root.hex()
    assert "cycle 20250430" in check.message and root in check.message
    (evidence,) = check.evidence
    proposal = _proposal_receipt(scenario, 20250430)
    assert evidence.tx == proposal["transactionHash"].to_0x_hex()
    assert evidence.values["entries_root"] == root


def test_role_granted_to_an_unknown_address_fails_only_the_role_holders_check(
    scenario: Scenario, audit: AuditFn
) -> None:
    receipt = scenario.govern("CreditRegistry", "grantRole", RELAYER_ROLE, UNKNOWN_ADDRESS)
    report = audit(scenario)
    assert failed_ids(report) == {"invariant.role_holders_known"}
    check = check_of(report, "invariant.role_holders_known")
    assert "RELAYER_ROLE" in check.message and UNKNOWN_ADDRESS in check.message
    (evidence,) = check.evidence
    assert (evidence.block, evidence.tx) == (
        receipt["blockNumber"],
        receipt["transactionHash"].to_0x_hex(),
    )
    assert evidence.address == scenario.contracts["CreditRegistry"].address
    assert evidence.values["account"] == UNKNOWN_ADDRESS
    timelock = scenario.contracts["NetworkTimelock"].address
    assert evidence.values["granted_by"] == timelock
    actions = [a for a in report.admin_actions if a.ref.tx == evidence.tx]
    assert [a.category for a in actions] == ["role", "timelock"]
    assert actions[0].sender == timelock and actions[0].operation == actions[1].operation != ""


def test_role_granted_to_an_allowlisted_address_passes(scenario: Scenario, audit: AuditFn) -> None:
    scenario.govern("CreditRegistry", "grantRole", RELAYER_ROLE, UNKNOWN_ADDRESS)
    report = audit(scenario, allowlist=(UNKNOWN_ADDRESS,))
    assert failed_ids(report) == set()


def _rotate_signers(scenario: Scenario) -> tuple[list[str], TxReceipt]:
    new_signers = [str(scenario.accounts.account(index).address) for index in (10, 11, 12)]
    receipt = scenario.govern("OracleQuorum", "setSigners", new_signers, 2)
    scenario.signer_indexes = (10, 12)
    return new_signers, receipt


def test_signer_set_change_is_listed_as_an_admin_action_and_fails_nothing_when_known(
    scenario: Scenario, audit: AuditFn
) -> None:
    new_signers, receipt = _rotate_signers(scenario)
    after = settle_cycle(scenario, 20250430, {2: [9_000], 3: [-9_000]})
    propose(scenario, after)
    report = audit(scenario, allowlist=tuple(new_signers))
    assert failed_ids(report) == set()
    tx = receipt["transactionHash"].to_0x_hex()
    (action,) = [a for a in report.admin_actions if a.category == "signers" and a.ref.tx == tx]
    assert action.ref.block == receipt["blockNumber"]
    assert action.description.startswith("signer set v2: 2 of 3")
    # the timelock made the call; its executor sent the transaction
    assert action.sender == scenario.contracts["NetworkTimelock"].address
    assert action.operation and action.function == "setSigners"
    assert [s.version for s in report.signer_sets] == [1, 2]
    quorum = check_of(report, "invariant.cycle_quorum")
    assert quorum.message.startswith("6 quorum reports verified")


def test_signer_set_with_an_unknown_signer_fails_only_the_signers_check(
    scenario: Scenario, audit: AuditFn
) -> None:
    new_signers, receipt = _rotate_signers(scenario)
    report = audit(scenario, allowlist=tuple(new_signers[:2]))
    assert failed_ids(report) == {"invariant.signers_known"}
    check = check_of(report, "invariant.signers_known")
    assert "signer set v2" in check.message and new_signers[2] in check.message
    (evidence,) = check.evidence
    assert evidence.tx == receipt["transactionHash"].to_0x_hex()


def test_tampered_line_balance_fails_only_the_line_states_check(
    scenario: Scenario, audit: AuditFn
) -> None:
    leaves = scenario.books.line_states[20250131]
    scenario.books.line_states[20250131] = [(leaves[0][0], leaves[0][1] - 500), *leaves[1:]]
    report = audit(scenario)
    assert failed_ids(report) == {"reconcile.line_states"}
    check = check_of(report, "reconcile.line_states")
    assert "line state of cycle 20250131" in check.message
    assert (
        check.evidence[0].values["chain_total_fen"] - check.evidence[0].values["exported_total_fen"]
        == 500
    )


def test_line_state_committed_with_a_quorum_report_is_verified_and_reconciled(
    scenario: Scenario, audit: AuditFn
) -> None:
    later = settle_cycle(scenario, 20250430, {1: [1], 2: [-1]})
    propose(scenario, later)
    commit_line_state(scenario, 20250430, [("0x" + "ab" * 32, 5)])
    report = audit(scenario)
    assert failed_ids(report) == set()
    assert "3 line-state roots reproduced" in check_of(report, "reconcile.line_states").message


def test_stored_terms_that_do_not_hash_to_the_terms_hash_fail_only_the_terms_sample(
    scenario: Scenario, audit: AuditFn
) -> None:
    records = books_records(scenario)
    tampered = []
    for record in records:
        if isinstance(record, ProductTermsRecord) and record.product_code == "REV-PAY":
            record = record.model_copy(
                update={"canonical_terms": record.canonical_terms.replace("500", "450", 1)}
            )
        tampered.append(record)
    report = audit(scenario, tampered)
    assert failed_ids(report) == {"reconcile.terms_sample"}
    assert (
        "stored terms of REV-PAY v1 hash to" in check_of(report, "reconcile.terms_sample").message
    )
