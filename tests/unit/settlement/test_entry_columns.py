"""A large close held as columns (`EntryColumns`, `close_columns`) is the same close as one
over `SettlementEntry` objects: same leaves, root, positions and proofs; and it refuses
what `close_cycle` refuses."""

from __future__ import annotations

import random

import numpy as np
import pytest

from node_api.kernel.chain import EntryKind
from node_api.kernel.errors import CreditNetValueError
from scripts.bench.tree import (
    BENCH_CYCLE_ID,
    PhaseClock,
    generate_and_allocate,
    generate_and_allocate_columns,
    make_products,
)
from settlement.entries import EntryColumns, SettlementEntry, compute_leaf_hash_array
from settlement.merkle import verify
from settlement.netting import (
    CycleNotBalancedError,
    close_columns,
    close_cycle,
    net_column_positions,
    net_positions,
)
from settlement.salts import LeafSalts

SALTS = LeafSalts(b"test-columns-leaf-salt-secret")


def _entries(count: int, seed: int, cycle_id: int = 20250102) -> list[SettlementEntry]:
    rng = random.Random(seed)
    entries = []
    for entry_id in range(1, count + 1):
        partner_id = rng.choice((1, 7, 2**32 - 1))
        amount = rng.choice((0, 1, -1, 2**63 - 1, -(2**63), rng.randrange(-(10**9), 10**9)))
        entries.append(
            SettlementEntry(
                cycle_id,
                entry_id,
                partner_id,
                rng.choice(list(EntryKind)),
                amount,
                SALTS.salt(cycle_id, entry_id, partner_id),
                f"posting-{entry_id % 5}",
            )
        )
    return entries


def test_columns_hold_the_same_entries_and_hash_the_same_leaves() -> None:
    entries = _entries(300, seed=1)

    columns = EntryColumns.from_entries(20250102, entries)

    assert list(columns) == entries
    hashes = compute_leaf_hash_array(columns)
    assert [row.tobytes() for row in hashes] == [entry.leaf_hash() for entry in entries]
    assert columns.position_of(entries[123].entry_id) == 123


def test_RevertWhen_columns_get_an_amount_beyond_int64_or_a_foreign_cycle() -> None:
    wide = _entries(3, seed=2)
    wide[1] = SettlementEntry(20250102, 2, 1, EntryKind.REFUND, 2**63, SALTS.salt(1, 2, 1))

    with pytest.raises(CreditNetValueError) as raised:
        EntryColumns.from_entries(20250102, wide)
    assert raised.value.field == "amount_fen"
    with pytest.raises(CreditNetValueError):
        EntryColumns.from_entries(20250103, _entries(3, seed=2))


def test_wide_amounts_still_close_through_the_entry_path() -> None:
    entries = [
        SettlementEntry(5, 1, 1, EntryKind.REFUND, 2**200, SALTS.salt(5, 1, 1)),
        SettlementEntry(5, 2, 2, EntryKind.REFUND, -(2**200), SALTS.salt(5, 2, 2)),
    ]

    close = close_cycle(5, entries)

    assert close.net_positions_fen == (2**200, -(2**200))
    assert verify(close.root, entries[0].leaf_hash(), close.tree.proof(0))


def test_column_netting_is_exact_even_where_int64_sums_would_overflow() -> None:
    entries = _entries(400, seed=3)

    columns = EntryColumns.from_entries(20250102, entries)

    assert net_column_positions(columns) == net_positions(entries)


def test_columns_close_equals_the_entry_close_of_the_bench_cycle() -> None:
    rng_entries, rng_columns = random.Random(5), random.Random(5)
    _, entries = generate_and_allocate(4_000, rng_entries, make_products(rng_entries), PhaseClock())
    _, columns = generate_and_allocate_columns(
        4_000, rng_columns, make_products(rng_columns), PhaseClock()
    )
    shuffled = list(entries)
    random.Random(6).shuffle(shuffled)

    by_entries = close_cycle(BENCH_CYCLE_ID, shuffled)
    by_columns = close_columns(columns)

    assert list(columns) == entries
    assert by_columns.root == by_entries.root
    assert by_columns.partner_ids == by_entries.partner_ids
    assert by_columns.net_positions_fen == by_entries.net_positions_fen
    assert by_columns.tree == by_entries.tree
    entry = entries[2_345]
    assert by_columns.proof_for_entry(entry.entry_id) == by_entries.proof_for_entry(entry.entry_id)


def test_unsorted_columns_are_sorted_and_duplicates_refused() -> None:
    entries = _entries(50, seed=7)
    reversed_columns = EntryColumns.from_entries(20250102, entries[::-1])
    columns = EntryColumns.from_entries(20250102, entries)
    duplicate = EntryColumns.from_entries(20250102, [*entries, entries[10]])
    balanced = EntryColumns.from_entries(
        20250102,
        [
            SettlementEntry(20250102, 2, 4, EntryKind.FEE_SHARE, 10, SALTS.salt(1, 2, 4)),
            SettlementEntry(20250102, 1, 3, EntryKind.FEE_SHARE, -10, SALTS.salt(1, 1, 3)),
        ],
    )

    assert close_columns(balanced).entries[0].entry_id == 1
    with pytest.raises(CreditNetValueError):
        close_columns(duplicate)
    assert sum(entry.amount_fen for entry in entries) != 0
    with pytest.raises(CycleNotBalancedError):
        close_columns(reversed_columns)
    assert np.array_equal(columns.entry_ids, np.arange(1, 51, dtype=np.uint64))
