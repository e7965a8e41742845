"""The gas benchmark's figures meet the contracts' targets (gas is deterministic, so
this is not a timed test): opening in a batch of 100 under 60k gas per agreement, a
claim under 80k, and a cycle's cost independent of how many entries it commits."""

from __future__ import annotations

from typing import Any

import pytest
from web3 import Web3

from oracles.anvil import AnvilProcess, revert_to_snapshot, take_snapshot
from scripts.bench.gas import (
    compute_balanced_positions,
    compute_intrinsic_gas,
    compute_root_from_proof,
    compute_tree_root,
    run_gas_bench,
)

pytestmark = pytest.mark.chain


@pytest.fixture(scope="module")
def figures(anvil: AnvilProcess, w3: Web3) -> Any:
    """One benchmark run on the worker's chain, reverted afterwards."""
    snapshot_id = take_snapshot(w3)
    yield run_gas_bench(anvil.rpc_url)
    revert_to_snapshot(w3, snapshot_id)


def test_opening_in_a_batch_of_100_costs_under_60k_gas_per_agreement(figures: Any) -> None:
    per_agreement = figures["open_agreements_gas_per_agreement"]
    assert per_agreement["batch_100"] < 60_000
    assert per_agreement["batch_100"] < per_agreement["batch_10"] < per_agreement["batch_1"]


def test_claim_costs_under_80k_gas(figures: Any) -> None:
    assert figures["claim_gas"] < 80_000


def test_cycle_execution_gas_is_equal_for_1k_and_1m_entries(figures: Any) -> None:
    by_entries = figures["propose_cycle_by_entry_count"]
    assert by_entries["entries_1000_execution_gas"] == by_entries["entries_1000000_execution_gas"]


def test_proposal_gas_grows_with_partners(figures: Any) -> None:
    by_partners = figures["propose_cycle_gas"]
    assert by_partners["partners_5"] < by_partners["partners_20"] < by_partners["partners_100"]


def test_every_figure_is_reported_with_its_unit(figures: Any) -> None:
    assert set(figures["deploy_gas"]) == {
        "SettlementToken",
        "OracleQuorum",
        "CreditRegistry",
        "ClearingHouse",
    }
    assert all(figures["targets"][key] for key in ("open_batch_100_met", "claim_met"))
    assert figures["verify_entry_depth_20_gas"] > figures["verify_entry_depth_20_execution_gas"]


def test_balanced_positions_sum_to_zero_and_none_is_zero() -> None:
    for count in (2, 5, 100):
        positions = compute_balanced_positions(count)
        assert sum(positions) == 0
        assert 0 not in positions


def test_intrinsic_gas_charges_4_per_zero_and_16_per_other_byte() -> None:
    assert compute_intrinsic_gas(b"\x00\x01\x00") == 21_000 + 4 + 16 + 4


def test_root_from_proof_matches_tree_root_for_two_leaves() -> None:
    left, right = b"\x01" * 32, b"\x02" * 32
    assert compute_root_from_proof(left, [right]) == compute_tree_root([left, right])
