"""Benchmark of a cycle close: allocate, net, hash, build the tree, produce every proof.

`run_tree_bench(n)` makes a synthetic but realistic cycle of about `n` entries across 50
partners (one lender, 30 funding banks, 15 channels, 4 guarantors; 24 products), then
times each step of the close separately so the report shows where the time goes. Event
generation (random numbers) is timed apart and not counted in the total. Run it as
`python -m scripts.bench.tree 1000000`; `creditnet bench settle` adds submission.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from scripts.bench.figures import Figures
from settlement.allocation import (
    ChannelTerms,
    EventKind,
    FunderShare,
    GuaranteeTerms,
    MoneyEvent,
    PartyTerms,
    allocate_to_entries,
)
from settlement.entries import SettlementEntry, compute_leaf_hashes
from settlement.merkle import MerkleTree, build_tree, verify
from settlement.netting import (
    ClosedCycle,
    assemble_close,
    check_balanced,
    net_positions,
    sort_entries,
)
from settlement.salts import LeafSalts

LENDER_ID = 1
FUNDER_IDS = tuple(range(2, 32))
CHANNEL_IDS = tuple(range(32, 47))
GUARANTOR_IDS = tuple(range(47, 51))
PRODUCT_COUNT = 24
SAMPLE_PROOFS = 10_000
BENCH_CYCLE_ID = 20_240_611
BENCH_LEAF_SALTS = LeafSalts(b"creditnet-bench-leaf-salt-secret")
"""The benchmark node's leaf salts (every entry is salted, as a real close salts it)."""

_EVENT_WEIGHTS = {
    EventKind.PURCHASE_FUNDED: 30,
    EventKind.CHANNEL_COMMISSION: 20,
    EventKind.PRINCIPAL_REPAID: 20,
    EventKind.INTEREST_COLLECTED: 15,
    EventKind.FEE_COLLECTED: 5,
    EventKind.REFUND: 4,
    EventKind.GUARANTOR_PAYMENT: 3,
    EventKind.CHARGE_OFF: 3,
}
_MAX_LINES_PER_EVENT = 8
"""An interest or refund event with three funders makes eight lines; generating at most
`remaining / 8` events per round never overshoots `n` by more than one event."""


class PhaseClock:
    """Wall and CPU seconds per named phase. CPU time is reported too because this machine
    is shared: wall time stretches when other work runs, this process's CPU time does not."""

    def __init__(self) -> None:
        self.elapsed_s: dict[str, float] = {}
        self.cpu_s: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        wall_started, cpu_started = time.perf_counter(), time.process_time()
        yield
        self.elapsed_s[name] = self.elapsed_s.get(name, 0.0) + time.perf_counter() - wall_started
        self.cpu_s[name] = self.cpu_s.get(name, 0.0) + time.process_time() - cpu_started


def make_products(rng: random.Random) -> list[PartyTerms]:
    """24 products: 1–3 bank funders each (70–90 % of a loan), a channel, some guaranteed.

    Funders are dealt round-robin so every one of the 30 banks funds some product.
    """
    products = []
    next_funder = 0
    for number in range(PRODUCT_COUNT):
        funder_count = 1 + number % 3
        funder_ids = [FUNDER_IDS[(next_funder + k) % len(FUNDER_IDS)] for k in range(funder_count)]
        next_funder += funder_count
        total_ppm = rng.randrange(700_000, 900_001, 50_000)
        funders = tuple(
            FunderShare(partner_id, total_ppm // funder_count, rng.randrange(400, 1201, 50))
            for partner_id in funder_ids
        )
        channel = ChannelTerms(
            CHANNEL_IDS[number % len(CHANNEL_IDS)], rng.randrange(30, 301, 10), rng.choice((0, 60))
        )
        guarantee = None
        if number % 3 == 0:
            guarantee = GuaranteeTerms(GUARANTOR_IDS[number % len(GUARANTOR_IDS)], 800_000)
        products.append(PartyTerms(LENDER_ID, funders, channel, guarantee))
    return products


def make_events(
    rng: random.Random, count: int, products: list[PartyTerms]
) -> list[tuple[int, MoneyEvent]]:
    """`count` random (product number, event) pairs with loan-sized amounts in fen.

    A guarantor payment drawn for a product without a guarantor becomes a charge-off.
    """
    kinds = list(_EVENT_WEIGHTS)
    weights = list(_EVENT_WEIGHTS.values())
    events = []
    for sequence, drawn_kind in enumerate(rng.choices(kinds, weights, k=count)):
        product_number = rng.randrange(len(products))
        kind = drawn_kind
        if kind is EventKind.GUARANTOR_PAYMENT and products[product_number].guarantee is None:
            kind = EventKind.CHARGE_OFF
        principal_fen = rng.randrange(1_000, 1_000_000)
        amount_fen = rng.randrange(1, principal_fen + 1)
        if kind is EventKind.INTEREST_COLLECTED:
            amount_fen = principal_fen * rng.randrange(50, 200) // 10_000
        event = MoneyEvent(
            kind,
            amount_fen,
            source_ref=f"posting-{sequence}",
            principal_fen=principal_fen,
            accrual_days=30,
            principal_reduced_before_fen=principal_fen - amount_fen,
        )
        events.append((product_number, event))
    return events


def append_allocations(
    entries: list[SettlementEntry],
    events: list[tuple[int, MoneyEvent]],
    products: list[PartyTerms],
    cycle_id: int,
    salts: LeafSalts = BENCH_LEAF_SALTS,
) -> None:
    """Allocate `events` in order onto `entries`, continuing its entry-id numbering (the
    salting of every entry is part of the allocation phase)."""
    for product_number, event in events:
        entries.extend(
            allocate_to_entries(
                event,
                products[product_number],
                cycle_id=cycle_id,
                first_entry_id=len(entries) + 1,
                salts=salts,
            )
        )


def generate_and_allocate(
    n_entries: int, rng: random.Random, products: list[PartyTerms], clock: PhaseClock
) -> tuple[int, list[SettlementEntry]]:
    """(event count, entries) for at least `n_entries`; generation and allocation timed apart."""
    entries: list[SettlementEntry] = []
    event_count = 0
    while len(entries) < n_entries:
        batch_size = max(1, (n_entries - len(entries)) // _MAX_LINES_PER_EVENT)
        with clock.phase("generate"):
            events = make_events(rng, batch_size, products)
        event_count += len(events)
        with clock.phase("allocate"):
            append_allocations(entries, events, products, BENCH_CYCLE_ID)
    return event_count, entries


def _sample_timing_us(
    tree: MerkleTree, leaf_hashes: list[bytes], rng: random.Random
) -> dict[str, float]:
    """Mean µs to verify one proof, and to serve one from a deserialised tree (by leaf hash,
    which includes the binary search, and by input position)."""
    sample = rng.sample(range(tree.leaf_count), min(SAMPLE_PROOFS, tree.leaf_count))
    proofs = [tree.proof(index) for index in sample]
    root = tree.root
    started = time.perf_counter()
    verified = all(
        verify(root, leaf_hashes[index], proof) for index, proof in zip(sample, proofs, strict=True)
    )
    verify_us = (time.perf_counter() - started) / len(sample) * 1e6
    if not verified:
        raise AssertionError("a benchmark proof failed to verify")
    started = time.perf_counter()
    restored = MerkleTree.from_bytes(tree.to_bytes())
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    for index in sample:
        restored.proof_for_leaf(leaf_hashes[index])
    by_leaf_us = (time.perf_counter() - started) / len(sample) * 1e6
    started = time.perf_counter()
    for index in sample:
        restored.proof(index)
    by_index_us = (time.perf_counter() - started) / len(sample) * 1e6
    return {
        "verify_us": verify_us,
        "proof_by_leaf_hash_us": by_leaf_us,
        "proof_by_index_us": by_index_us,
        "tree_load_elapsed_s": load_s,
    }


CLOSE_PHASES = ("allocate", "sort", "net", "hash_leaves", "build_tree", "all_proofs", "serialise")
"""The phases counted in `total_elapsed_s` (event generation is not)."""


@dataclass(frozen=True)
class TimedClose:
    """A synthetic cycle closed phase by phase, with what the reports need of it."""

    close: ClosedCycle
    event_count: int
    leaf_hashes: list[bytes]
    clock: PhaseClock
    proof_bytes_max: int
    proof_bytes_mean: float
    tree_bytes: int


def close_synthetic_cycle(n_entries: int, rng: random.Random) -> TimedClose:
    """Make at least `n_entries` entries (`make_products`, `generate_and_allocate`), then
    sort, net (Σ = 0), hash, build the tree, cut every proof and serialise the tree, each
    phase timed on the returned clock."""
    products = make_products(rng)
    clock = PhaseClock()
    event_count, entries = generate_and_allocate(n_entries, rng, products, clock)
    with clock.phase("sort"):
        ordered = sort_entries(BENCH_CYCLE_ID, entries)
    with clock.phase("net"):
        positions = net_positions(ordered)
        check_balanced(BENCH_CYCLE_ID, positions)
    with clock.phase("hash_leaves"):
        leaf_hashes = compute_leaf_hashes(ordered)
    with clock.phase("build_tree"):
        tree = build_tree(leaf_hashes)
    with clock.phase("all_proofs"):
        packed = tree.all_proofs_packed()
    with clock.phase("serialise"):
        tree_bytes = len(tree.to_bytes())
    close = assemble_close(BENCH_CYCLE_ID, ordered, positions, tree)
    return TimedClose(
        close,
        event_count,
        leaf_hashes,
        clock,
        proof_bytes_max=max(len(proof) for proof in packed),
        proof_bytes_mean=sum(len(proof) for proof in packed) / len(packed),
        tree_bytes=tree_bytes,
    )


def run_tree_bench(n_entries: int, *, seed: int = 7) -> Figures:
    """Close one synthetic cycle of at least `n_entries` entries and time every step.

    Keys carry units: `<phase>_elapsed_s` (wall), `<phase>_cpu_s`, `<phase>_rate_per_s`
    (entries per wall second), `total_elapsed_s`, `proof_bytes_*`, `verify_us`, ...
    """
    rng = random.Random(seed)
    timed = close_synthetic_cycle(n_entries, rng)
    close, clock = timed.close, timed.clock
    count = close.entry_count
    report: Figures = {"entry_count": count, "event_count": timed.event_count}
    report["partner_count"] = len(close.partner_ids)
    report["generate_elapsed_s"] = clock.elapsed_s["generate"]
    for name in CLOSE_PHASES:
        elapsed_s = clock.elapsed_s[name]
        report[f"{name}_elapsed_s"] = elapsed_s
        report[f"{name}_cpu_s"] = clock.cpu_s[name]
        report[f"{name}_rate_per_s"] = count / elapsed_s if elapsed_s else float("inf")
    report["total_elapsed_s"] = sum(clock.elapsed_s[name] for name in CLOSE_PHASES)
    report["total_cpu_s"] = sum(clock.cpu_s[name] for name in CLOSE_PHASES)
    report["proof_bytes_max"] = timed.proof_bytes_max
    report["proof_bytes_mean"] = timed.proof_bytes_mean
    report["tree_bytes"] = timed.tree_bytes
    report["root"] = "0x" + close.root.hex()
    report.update(_sample_timing_us(close.tree, timed.leaf_hashes, rng))
    return report


def main(argv: list[str]) -> int:
    """`python -m scripts.bench.tree N ...`: one JSON report per N, one per line."""
    for argument in argv or ["100000"]:
        print(json.dumps(run_tree_bench(int(argument.replace("_", "")))), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
