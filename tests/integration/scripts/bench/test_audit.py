"""`creditnet bench audit` seeds a history its own audit passes (small size here)."""

from __future__ import annotations

from typing import Any

import pytest

from scripts.bench.audit import run_audit_bench

pytestmark = [pytest.mark.chain, pytest.mark.slow]


def test_bench_history_audits_green_and_reports_its_phases() -> None:
    figures: Any = run_audit_bench(agreements=250, cycles=31)
    assert figures["passed"] is True and figures["failed_checks"] == []
    # 4 partners, 1 approval, 2 opening batches, 3 change batches, 6 per cycle, 1 line state.
    assert figures["transactions_seeded"] == 4 + 1 + 2 + 3 + 31 * 6 + 1
    assert set(figures["phases_s"]) == {
        "elapsed_recompile_s",
        "elapsed_source_verification_s",
        "elapsed_replay_s",
        "elapsed_views_s",
        "elapsed_invariants_s",
        "elapsed_reconcile_s",
    }
