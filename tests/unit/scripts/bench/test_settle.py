"""The settle benchmark runs end to end on its own anvil, every sampled proof verifies
on-chain, and the submission's execution gas does not grow with the number of entries."""

from __future__ import annotations

from typing import Any

import pytest

from scripts.bench.settle import run_settle_bench

pytestmark = pytest.mark.chain


def test_submission_gas_is_flat_in_entries_and_proofs_verify_on_chain() -> None:
    figures: Any = run_settle_bench(sizes=(8_000, 30_000), store=1)
    small, large = figures["runs"]
    assert small["entry_count"] >= 8_000 and large["entry_count"] >= 30_000
    # Same 50 partners: the gas differs only by the creditor branch, never per entry.
    creditors_apart = abs(small["creditor_count"] - large["creditor_count"])
    assert figures["submit_execution_gas_spread"] <= 100 * creditors_apart
    assert small["partner_count"] == large["partner_count"] == 50
    assert large["proof_bytes_max"] > small["proof_bytes_max"]
    for run in figures["runs"]:
        assert run["onchain_proofs_checked"] == 50
        assert run["store_sqlite_elapsed_s"] > 0
        assert run["total_elapsed_s"] >= run["submit_elapsed_s"] > 0
