"""The report: one JSON object per check, and one self-contained, escaped HTML page."""

from __future__ import annotations

import json
from pathlib import Path

from node_api.kernel.chain import CycleStatus
from oracles.audit.checks import EVIDENCE_MAX, Evidence, make_check
from oracles.audit.events import EventRef
from oracles.audit.governance_checks import GovernanceSummary
from oracles.audit.replay_state import (
    AdminAction,
    CycleReplay,
    SignerSet,
    TimelockCall,
    TimelockOperation,
)
from oracles.audit.report import AuditReport, render_html, write_report


def _report(*, failing: bool) -> AuditReport:
    failures = [
        Evidence(12, "0x" + "ab" * 32, "0x" + "cd" * 20, {"problem": "<script>alert(1)</script>"})
    ]
    checks = [
        make_check(
            "replay.cycles", "Cycles replay", [], ok_message="3 cycles", fail_message="{first}"
        ),
        make_check(
            "reconcile.cycle_roots",
            "Roots",
            failures if failing else [],
            ok_message="ok",
            fail_message="{count} bad; first: {first}",
        ),
    ]
    ref = EventRef(12, 0, "0x" + "ab" * 32)
    return AuditReport(
        chain_id=31337,
        rpc="http://127.0.0.1:8545",
        manifest="deployments/31337.json",
        audited_block=99,
        audited_block_hash="0x" + "11" * 32,
        from_block=1,
        partial_replay=False,
        checks=checks,
        admin_actions=[
            AdminAction(
                "OracleQuorum", "0x" + "cd" * 20, "signers", "signer set v2", ref, "0x" + "ef" * 20
            )
        ],
        signer_sets=[SignerSet(2, ("0x" + "01" * 20,), 1, ref)],
        summary={"events": 10},
        cycles=[_defaulted_cycle(ref), _retried_cycle(ref)],
        governance=_governance(ref),
    )


def _defaulted_cycle(ref: EventRef) -> CycleReplay:
    return CycleReplay(
        cycle_id=20250131,
        entries_root="0x" + "cc" * 32,
        entry_count=3,
        partner_ids=(1, 2, 3),
        net_positions_fen=(500, -300, -200),
        dispute_deadline=100,
        status=CycleStatus.DEFAULTED,
        proposed=ref,
        total_due_fen=500,
        funded_fen=300,
        refunded_fen=100,
        funding_deadline=200,
        defaulted_at=250,
        defaulters=(3,),
    )


def _retried_cycle(ref: EventRef) -> CycleReplay:
    return CycleReplay(
        cycle_id=100_000_000 + 20250131,
        entries_root="0x" + "dd" * 32,
        entry_count=2,
        partner_ids=(1, 3),
        net_positions_fen=(200, -200),
        dispute_deadline=300,
        status=CycleStatus.FUNDED,
        proposed=ref,
        total_due_fen=200,
        funded_fen=200,
        claimed_fen=200,
    )


def _governance(ref: EventRef) -> GovernanceSummary:
    operation = TimelockOperation(
        operation_id="0x" + "0f" * 32,
        calls=[TimelockCall(0, "0x" + "cd" * 20, 0, "0x", "OracleQuorum.setSigners(<b>)")],
        predecessor="0x" + "00" * 32,
        delay_s=60,
        scheduled=ref,
        scheduled_at=1_000,
        min_delay_s=60,
    )
    return GovernanceSummary(
        timelock="0x" + "55" * 20,
        min_delay_s=60,
        proposers=["0x" + "d0" * 20],
        executors=["0x" + "00" * 20],
        cancellers=["0x" + "d0" * 20],
        admins={"OracleQuorum": ["0x" + "55" * 20]},
        pausers={"OracleQuorum": ["0x" + "55" * 20]},
        operations=[operation],
    )


def test_json_report_has_one_object_per_check_with_its_evidence(tmp_path: Path) -> None:
    json_path, html_path = write_report(_report(failing=True), tmp_path)
    document = json.loads(json_path.read_text())
    assert document["passed"] is False
    failed = document["checks"][1]
    assert (failed["id"], failed["result"]) == ("reconcile.cycle_roots", "fail")
    assert failed["evidence"][0] == {
        "block": 12,
        "tx": "0x" + "ab" * 32,
        "address": "0x" + "cd" * 20,
        "values": {"problem": "<script>alert(1)</script>"},
    }
    assert document["admin_actions"][0]["block"] == 12 and html_path.is_file()


def test_html_is_self_contained_and_escapes_every_value() -> None:
    page = render_html(_report(failing=True))
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "src=" not in page and "<link" not in page and "http://127.0.0.1:8545" in page
    assert "1 of 2 checks passed, 1 failed" in page and "signer set v2" in page
    assert "<h2>Failed checks</h2>" in page and '<a href="#reconcile.cycle_roots">' in page


def test_a_report_passes_only_when_every_check_passes() -> None:
    assert _report(failing=False).passed and not _report(failing=True).passed
    assert not AuditReport(1, "", "", 1, "", 1, False, checks=[]).passed


def test_evidence_is_capped_and_the_rest_counted() -> None:
    failures = [Evidence(values={"problem": f"p{n}"}) for n in range(EVIDENCE_MAX + 7)]
    check = make_check(
        "x", "x", failures, ok_message="", fail_message="{count} failures; first: {first}"
    )
    assert len(check.evidence) == EVIDENCE_MAX and check.evidence_omitted == 7
    assert check.message == f"{EVIDENCE_MAX + 7} failures; first: p0"


def test_json_report_has_each_cycles_money_and_the_governance(tmp_path: Path) -> None:
    json_path, _html_path = write_report(_report(failing=False), tmp_path)
    document = json.loads(json_path.read_text())
    defaulted, retried = document["cycles"]
    assert defaulted == {
        "cycle_id": 20250131,
        "business_date": "2025-01-31",
        "attempt": 0,
        "status": "Defaulted",
        "due_fen": 500,
        "funded_fen": 300,
        "claimed_fen": 0,
        "refunded_fen": 100,
        "held_fen": 200,
        "funding_deadline": 200,
        "defaulted_at": 250,
        "defaulters": [3],
        "proposed_block": 12,
        "proposed_tx": "0x" + "ab" * 32,
    }
    assert (retried["business_date"], retried["attempt"], retried["status"]) == (
        "2025-01-31",
        1,
        "Funded",
    )
    governance = document["governance"]
    assert (governance["min_delay_s"], governance["executors"]) == (60, ["0x" + "00" * 20])
    (operation,) = governance["operations"]
    assert (operation["state"], operation["ready_at"], operation["delay_s"]) == (
        "pending",
        1_060,
        60,
    )
    assert operation["calls"] == ["OracleQuorum.setSigners(<b>)"]
    assert document["admin_actions"][0]["timelock_operation"] == ""


def test_html_shows_the_cycles_money_and_the_timelock() -> None:
    page = render_html(_report(failing=False))
    assert "<h2>Cycles (2), money in fen</h2>" in page
    assert "<td>Defaulted</td>" in page and "<td>2025-01-31</td>" in page
    assert "<h2>Governance</h2>" in page and "minimum delay (s)</td><td>60</td>" in page
    assert "anyone (0x0000000000000000000000000000000000000000)" in page
    assert "OracleQuorum.setSigners(&lt;b&gt;)" in page and "<b>" not in page
    without = render_html(AuditReport(1, "", "", 1, "", 1, False, checks=[]))
    assert "No NetworkTimelock in the deployment." in without
