"""The report: one JSON object per check, and one self-contained, escaped HTML page."""

from __future__ import annotations

import json
from pathlib import Path

from oracles.audit.checks import EVIDENCE_MAX, Evidence, make_check
from oracles.audit.events import EventRef
from oracles.audit.replay_state import AdminAction, SignerSet
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
