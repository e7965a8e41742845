"""`creditnet audit` end to end: exit codes, report files, partial replay."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner
from web3 import Web3

from node_api.cli import app
from tests.integration.audit.conftest import AuditFn
from tests.integration.audit.scenario import (
    RELAYER_ROLE,
    Scenario,
    books_records,
    check_of,
    failed_ids,
    write_export,
)

pytestmark = pytest.mark.chain


def _invoke(scenario: Scenario, tmp_path: Path, *extra: str) -> tuple[int, str, Path]:
    export = write_export(
        tmp_path / "books.ndjson", scenario.manifest.chain_id, books_records(scenario)
    )
    out = tmp_path / "report"
    arguments = [
        "audit",
        "--rpc",
        scenario.anvil.rpc_url,
        "--manifest",
        str(scenario.manifest_path),
        "--export",
        str(export),
        "--out",
        str(out),
        "--sample",
        "3",
        *extra,
    ]
    result = CliRunner().invoke(app, arguments)
    return result.exit_code, result.stdout, out


def test_clean_audit_exits_zero_and_writes_both_reports(scenario: Scenario, tmp_path: Path) -> None:
    exit_code, stdout, out = _invoke(scenario, tmp_path)
    assert exit_code == 0, stdout
    assert stdout.strip().splitlines()[-1].startswith("PASS:")
    report = json.loads((out / "report.json").read_text())
    assert report["passed"] is True
    assert {check["result"] for check in report["checks"]} == {"pass"}
    assert {"id", "title", "result", "message", "evidence"} <= set(report["checks"][0])
    page = (out / "report.html").read_text()
    assert "<script" not in page and "src=" not in page and "<link" not in page
    assert "checks passed" in page and scenario.manifest.contracts["ClearingHouse"].address in page


def test_failed_check_exits_one_and_prints_the_finding(scenario: Scenario, tmp_path: Path) -> None:
    stranger = Web3.to_checksum_address("0x" + "77" * 20)
    scenario.govern("ClearingHouse", "grantRole", RELAYER_ROLE, stranger)
    exit_code, stdout, out = _invoke(scenario, tmp_path)
    assert exit_code == 1
    finding = f"first: ClearingHouse granted RELAYER_ROLE to unknown {stranger}"
    assert f"FAIL invariant.role_holders_known: 1 grants to unknown addresses; {finding}" in stdout
    report = json.loads((out / "report.json").read_text())
    failed = [check for check in report["checks"] if check["result"] == "fail"]
    assert [check["id"] for check in failed] == ["invariant.role_holders_known"]
    assert failed[0]["evidence"][0]["values"]["account"] == stranger
    assert "FAIL" in (out / "report.html").read_text()


def test_allowlisted_grantee_passes_from_the_command_line(
    scenario: Scenario, tmp_path: Path
) -> None:
    stranger = Web3.to_checksum_address("0x" + "77" * 20)
    scenario.govern("ClearingHouse", "grantRole", RELAYER_ROLE, stranger)
    allowlist = tmp_path / "known.txt"
    allowlist.write_text(f"# the lender's second relayer\n{stranger}\n")
    exit_code, stdout, _out = _invoke(scenario, tmp_path, "--allowlist", str(allowlist))
    assert exit_code == 0, stdout


def test_partial_replay_from_a_later_block_seeds_what_began_before_and_passes(
    scenario: Scenario, audit: AuditFn
) -> None:
    house = scenario.contracts["ClearingHouse"]
    (dispute,) = house.events.CycleDisputed().get_logs(from_block=0)
    agreement_id = bytes.fromhex(scenario.books.agreements[3].agreement_id[2:])
    scenario.send(scenario.relayer, "CreditRegistry", "setStatus", agreement_id, 2, 9)
    report = audit(scenario, from_block=dispute["blockNumber"])
    assert failed_ids(report) == set(), [c.message for c in report.failed_checks()]
    assert report.partial_replay and report.from_block == dispute["blockNumber"]
    # Cycle 20250228 (disputed in the window, proposed before it) is seeded from the views,
    # 20250331 is proposed in the window; the agreement changed in the window is seeded.
    assert (report.summary["cycles"], report.summary["agreements"]) == (2, 1)
    assert check_of(report, "replay.cycles").message.startswith("2 cycles replayed")
    # Cycle 20250331 and the line states reported for 20250131 and 20250228, all in the window.
    assert check_of(report, "invariant.cycle_quorum").message.startswith("3 quorum reports")


def test_the_creditnet_command_exits_non_zero_when_a_check_fails(
    scenario: Scenario, tmp_path: Path
) -> None:
    """Through the real entry point (not the test runner): no books means a failed audit."""
    command = [
        sys.executable,
        "-m",
        "node_api.cli",
        "audit",
        "--rpc",
        scenario.anvil.rpc_url,
        "--manifest",
        str(scenario.manifest_path),
        "--out",
        str(tmp_path),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 1, result.stderr
    assert "FAIL reconcile.books: reconciliation not run" in result.stdout
    assert json.loads((tmp_path / "report.json").read_text())["passed"] is False
