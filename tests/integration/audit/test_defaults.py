"""Member default on a real chain: a cycle one debtor leaves unfunded is declared
defaulted after its funding deadline, the debtor that funded takes its deposit back, the
date is settled again under the next attempt; the audit replays it all green and shows
each cycle's money. Tokens no cycle accounts for fail the custody check alone."""

from __future__ import annotations

import pytest
from web3.types import TxReceipt

from oracles.audit.report import cycle_json
from settlement.netting import ClosedCycle
from tests.integration.audit.conftest import AuditFn
from tests.integration.audit.scenario import (
    DISPUTE_WINDOW_S,
    Scenario,
    check_of,
    failed_ids,
    fund_and_claim,
    propose,
    settle_cycle,
)

pytestmark = pytest.mark.chain

DATE_ID = 20250430
RETRY_ID = 100_000_000 + DATE_ID
POSITIONS = {1: [9_000], 2: [-4_000], 3: [-5_000]}


def _finalize(scenario: Scenario, close: ClosedCycle) -> None:
    propose(scenario, close)
    scenario.advance_time(DISPUTE_WINDOW_S + 1)
    scenario.send(scenario.outsider, "ClearingHouse", "finalize", close.cycle_id)


def _default_and_retry(scenario: Scenario) -> tuple[TxReceipt, TxReceipt]:
    """Cycle 20250430: partner 2 funds, 3 does not; once the funding window is over it is
    declared defaulted and 2 refunded; the date is settled again as attempt 1. The
    declaration's and the refund's receipts."""
    first = settle_cycle(scenario, DATE_ID, POSITIONS)
    _finalize(scenario, first)
    scenario.send(scenario.admin, "ClearingHouse", "fund", DATE_ID, 2)
    house = scenario.contracts["ClearingHouse"]
    scenario.advance_time(house.functions.fundingWindowDurationSeconds().call() + 1)
    declared = scenario.send(scenario.outsider, "ClearingHouse", "declareDefault", DATE_ID, [3])
    refunded = scenario.send(scenario.outsider, "ClearingHouse", "refund", DATE_ID, 2)
    retry = settle_cycle(scenario, RETRY_ID, POSITIONS)
    _finalize(scenario, retry)
    fund_and_claim(scenario, retry, claim_partners={1})
    return declared, refunded


def test_a_defaulted_cycle_refunded_and_settled_again_audits_green(
    scenario: Scenario, audit: AuditFn
) -> None:
    _default_and_retry(scenario)
    report = audit(scenario)
    assert failed_ids(report) == set(), [c.message for c in report.failed_checks()]
    rows = {row["cycle_id"]: row for row in (cycle_json(c) for c in report.cycles)}
    defaulted, retried = rows[DATE_ID], rows[RETRY_ID]
    assert (defaulted["status"], defaulted["attempt"], defaulted["defaulters"]) == (
        "Defaulted",
        0,
        [3],
    )
    assert (
        defaulted["due_fen"],
        defaulted["funded_fen"],
        defaulted["claimed_fen"],
        defaulted["refunded_fen"],
        defaulted["held_fen"],
    ) == (9_000, 4_000, 0, 4_000, 0)
    # judged against the block time of the declaration
    assert defaulted["defaulted_at"] is not None
    assert defaulted["defaulted_at"] >= defaulted["funding_deadline"] > 0
    assert (retried["business_date"], retried["attempt"], retried["status"]) == (
        "2025-04-30",
        1,
        "Funded",
    )
    assert (retried["funded_fen"], retried["claimed_fen"], retried["held_fen"]) == (9_000, 9_000, 0)
    assert report.summary["cycles_defaulted"] == 1
    assert check_of(report, "invariant.cycle_defaults").message.startswith(
        "1 defaulted cycles, each after its funding deadline naming exactly its unfunded "
        "debtors; 1 refunds"
    )
    # the clean history's second cycle still holds the 2,000 fen its creditor 3 has not claimed
    custody = check_of(report, "invariant.custody")
    assert custody.evidence[0].values["balance_fen"] == 2_000
    assert custody.evidence[0].values["held_by_status_fen"] == {
        "Funded": 2_000,
        "Proposed": 0,
        "Defaulted": 0,
    }


def test_a_partial_replay_starting_at_the_default_seeds_the_finalized_cycle(
    scenario: Scenario, audit: AuditFn
) -> None:
    declared, _refunded = _default_and_retry(scenario)
    report = audit(scenario, from_block=declared["blockNumber"])
    assert failed_ids(report) == set(), [c.message for c in report.failed_checks()]
    assert report.partial_replay
    (seeded,) = [c for c in report.cycles if c.cycle_id == DATE_ID]
    assert seeded.proposed is None and seeded.status == 6 and seeded.refunded_fen == 4_000
    custody = check_of(report, "invariant.custody").evidence[0].values
    # the window: the refund out (4,000), the retry funded in and claimed out by partner 1
    assert custody["window_flows_fen"] == -4_000 + 9_000 - 9_000


def test_tokens_sent_straight_to_the_clearing_house_fail_only_the_custody_check(
    scenario: Scenario, audit: AuditFn
) -> None:
    house = scenario.contracts["ClearingHouse"].address
    scenario.send(scenario.admin, "SettlementToken", "transfer", house, 123)
    report = audit(scenario)
    assert failed_ids(report) == {"invariant.custody"}
    check = check_of(report, "invariant.custody")
    assert check.message == (
        "the clearing house holds 2123 fen, but its cycles account for 2000 fen "
        "(+123 fen with no way out)"
    )
    (evidence,) = check.evidence
    assert (evidence.address, evidence.values["expected_fen"]) == (house, 2_000)
    assert evidence.values["token"] == scenario.contracts["SettlementToken"].address
