"""The benchmark runs the real close on a small cycle and reports figures with units."""

from __future__ import annotations

import random
from typing import Any

from scripts.bench.tree import (
    CLOSE_PHASES,
    LENDER_ID,
    PhaseClock,
    generate_and_allocate,
    make_products,
    run_tree_bench,
)
from settlement.netting import close_cycle


def test_bench_reports_every_phase_with_units_for_a_small_cycle() -> None:
    report: Any = run_tree_bench(3_000)

    assert 3_000 <= report["entry_count"] <= 3_000 + 7
    for phase in CLOSE_PHASES:
        assert report[f"{phase}_elapsed_s"] >= 0
        assert report[f"{phase}_cpu_s"] >= 0
        assert report[f"{phase}_rate_per_s"] > 0
    assert report["total_elapsed_s"] >= report["all_proofs_elapsed_s"]
    assert report["proof_bytes_max"] == 12 * 32
    assert report["verify_us"] > 0
    assert (
        report["tree_bytes"] == 9 + (2 * report["entry_count"] - 1) * 32 + 4 * report["entry_count"]
    )


def test_bench_is_deterministic_for_a_seed() -> None:
    assert run_tree_bench(500, seed=3)["root"] == run_tree_bench(500, seed=3)["root"]


def test_synthetic_cycle_balances_across_fifty_partners() -> None:
    rng = random.Random(1)
    products = make_products(rng)

    _, entries = generate_and_allocate(20_000, rng, products, PhaseClock())
    close = close_cycle(20_240_611, entries)

    assert sum(close.net_positions_fen) == 0
    assert len(close.partner_ids) == 50
    assert LENDER_ID in close.partner_ids
