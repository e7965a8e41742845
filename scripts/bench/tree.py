"""Benchmark of a cycle close: allocate, net, hash, build the tree, produce every proof.

`run_tree_bench(n)` makes a synthetic but realistic cycle of about `n` entries across 50
partners (one lender, 30 funding banks, 15 channels, 4 guarantors; 24 products), then
times each step of the close separately so the report shows where the time goes. Event
generation (random numbers) is timed apart and not counted in the total. Run it as
`python -m scripts.bench.tree 1000000`; `creditnet bench settle` adds submission.

The close is the production one for large cycles (`settlement.netting.close_columns`):
events are allocated with `settlement.allocation.allocate` and salted exactly as
`allocate_to_entries` does, but appended to typed columns (`EntryColumns`) instead of one
object per entry, so ten million entries fit in a few GB. Every proof is still cut, in
streamed batches (`MerkleTree.iter_proof_batches`), and dropped: a close serves proofs on
demand from the stored tree. Reports carry the process's peak resident memory and the
machine's load average before and after, because the machine is shared.
"""

from __future__ import annotations

import json
import os
import random
import resource
import sys
import time
from array import array
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from node_api.kernel.money import Fen
from scripts.bench.figures import Figures
from settlement.allocation import (
    ChannelTerms,
    EventKind,
    FunderShare,
    GuaranteeTerms,
    MoneyEvent,
    PartyTerms,
    allocate,
    allocate_to_entries,
)
from settlement.entries import SALT_BYTES, EntryColumns, SettlementEntry, compute_leaf_hash_array
from settlement.merkle import MerkleTree, build_tree, verify
from settlement.netting import (
    ClosedCycle,
    assemble_close,
    check_balanced,
    net_column_positions,
    sort_columns,
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
_EVENT_BATCH_MAX = 131_072
"""Events generated per round at most, so the random events held at once stay bounded
(~40 MB) at ten million entries; at 1M entries no round reaches it."""


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
            Fen(amount_fen),
            source_ref=f"posting-{sequence}",
            principal_fen=Fen(principal_fen),
            accrual_days=30,
            principal_reduced_before_fen=Fen(principal_fen - amount_fen),
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


def _event_batch_size(n_entries: int, made: int) -> int:
    return min(_EVENT_BATCH_MAX, max(1, (n_entries - made) // _MAX_LINES_PER_EVENT))


def generate_and_allocate(
    n_entries: int, rng: random.Random, products: list[PartyTerms], clock: PhaseClock
) -> tuple[int, list[SettlementEntry]]:
    """(event count, entries) for at least `n_entries`; generation and allocation timed apart."""
    entries: list[SettlementEntry] = []
    event_count = 0
    while len(entries) < n_entries:
        with clock.phase("generate"):
            events = make_events(rng, _event_batch_size(n_entries, len(entries)), products)
        event_count += len(events)
        with clock.phase("allocate"):
            append_allocations(entries, events, products, BENCH_CYCLE_ID)
    return event_count, entries


class ColumnAllocator:
    """Entries of one cycle appended event by event to typed columns.

    The same entries as `append_allocations` (same allocation, ids from 1 in order, salts
    from the same `LeafSalts`), held as `array`s of machine integers and one salt buffer.
    """

    def __init__(self, cycle_id: int, salts: LeafSalts = BENCH_LEAF_SALTS) -> None:
        self.cycle_id = cycle_id
        self._salts = salts
        self._salt_of: dict[int, Callable[[int, int], bytes]] = {}
        self.partner_ids = array("I")
        self.kinds = array("B")
        self.amounts_fen = array("q")
        self.ref_index = array("i")
        self.salt_bytes = bytearray()
        self.source_refs: list[str] = []

    def __len__(self) -> int:
        return len(self.partner_ids)

    def extend(self, events: list[tuple[int, MoneyEvent]], products: list[PartyTerms]) -> None:
        """Allocate `events` in order, continuing the entry-id numbering."""
        cycle_id = self.cycle_id
        salt_of = self._salt_of
        partner_ids, kinds, amounts = self.partner_ids, self.kinds, self.amounts_fen
        ref_index, refs = self.ref_index, self.source_refs
        salts: list[bytes] = []
        entry_id = len(partner_ids)
        for product_number, event in events:
            ref = len(refs)
            refs.append(event.source_ref)
            for line in allocate(event, products[product_number]):
                entry_id += 1
                partner_id = line.partner_id
                salt = salt_of.get(partner_id)
                if salt is None:
                    salt = salt_of[partner_id] = self._salts.for_partner(partner_id).salt
                partner_ids.append(partner_id)
                kinds.append(line.kind)
                amounts.append(line.amount_fen)
                ref_index.append(ref)
                salts.append(salt(cycle_id, entry_id))
        self.salt_bytes += b"".join(salts)

    def columns(self) -> EntryColumns:
        """The entries so far as `EntryColumns` (the arrays share the builders' memory)."""
        count = len(self)
        return EntryColumns(
            self.cycle_id,
            np.arange(1, count + 1, dtype=np.uint64),
            np.frombuffer(self.partner_ids, dtype=np.uint32),
            np.frombuffer(self.kinds, dtype=np.uint8),
            np.frombuffer(self.amounts_fen, dtype=np.int64),
            np.frombuffer(self.salt_bytes, dtype=np.uint8).reshape(count, SALT_BYTES),
            tuple(self.source_refs),
            np.frombuffer(self.ref_index, dtype=np.int32),
        )


def generate_and_allocate_columns(
    n_entries: int, rng: random.Random, products: list[PartyTerms], clock: PhaseClock
) -> tuple[int, EntryColumns]:
    """`generate_and_allocate` into columns: the same events and the same entries."""
    allocator = ColumnAllocator(BENCH_CYCLE_ID)
    event_count = 0
    while len(allocator) < n_entries:
        with clock.phase("generate"):
            events = make_events(rng, _event_batch_size(n_entries, len(allocator)), products)
        event_count += len(events)
        with clock.phase("allocate"):
            allocator.extend(events, products)
    with clock.phase("allocate"):
        columns = allocator.columns()
    return event_count, columns


def get_peak_rss_mib() -> float:
    """This process's peak resident memory so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def get_load_average() -> list[float]:
    """The machine's 1, 5 and 15-minute load averages (2 cores: above 2 is contention)."""
    return [round(load, 2) for load in os.getloadavg()]


def _sample_timing_us(close: ClosedCycle, rng: random.Random) -> dict[str, float]:
    """Mean µs to verify one proof, and to serve one from a deserialised tree (by leaf hash,
    which includes the binary search, and by input position). The sampled leaves are
    rehashed from their entries, not read from the tree."""
    tree = close.tree
    sample = rng.sample(range(tree.leaf_count), min(SAMPLE_PROOFS, tree.leaf_count))
    proofs = [tree.proof(index) for index in sample]
    leaves = {index: close.entries[index].leaf_hash() for index in sample}
    root = tree.root
    started = time.perf_counter()
    verified = all(
        verify(root, leaves[index], proof) for index, proof in zip(sample, proofs, strict=True)
    )
    verify_us = (time.perf_counter() - started) / len(sample) * 1e6
    if not verified:
        raise AssertionError("a benchmark proof failed to verify")
    started = time.perf_counter()
    restored = MerkleTree.from_bytes(tree.to_bytes())
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    for index in sample:
        restored.proof_for_leaf(leaves[index])
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
    clock: PhaseClock
    proof_bytes_max: int
    proof_bytes_mean: float
    tree_bytes: int


def close_synthetic_cycle(n_entries: int, rng: random.Random) -> TimedClose:
    """Make at least `n_entries` entries (`make_products`, `generate_and_allocate_columns`),
    then sort, net (Σ = 0), hash, build the tree, cut every proof (streamed) and serialise
    the tree, each phase timed on the returned clock: the steps of `close_columns`."""
    products = make_products(rng)
    clock = PhaseClock()
    event_count, columns = generate_and_allocate_columns(n_entries, rng, products, clock)
    with clock.phase("sort"):
        ordered = sort_columns(columns)
    with clock.phase("net"):
        positions = net_column_positions(ordered)
        check_balanced(BENCH_CYCLE_ID, positions)
    with clock.phase("hash_leaves"):
        leaf_hashes = compute_leaf_hash_array(ordered)
    with clock.phase("build_tree"):
        tree = build_tree(leaf_hashes)
        del leaf_hashes  # the tree holds every leaf; the array is 32 bytes an entry
    with clock.phase("all_proofs"):
        proof_bytes_max, proof_bytes_total = 0, 0
        for batch in tree.iter_proof_batches():
            proof_bytes_max = max(proof_bytes_max, batch.proof_bytes)
            proof_bytes_total += batch.packed.size
    with clock.phase("serialise"):
        tree_bytes = len(tree.to_bytes())
    close = assemble_close(BENCH_CYCLE_ID, ordered, positions, tree)
    return TimedClose(
        close,
        event_count,
        clock,
        proof_bytes_max=proof_bytes_max,
        proof_bytes_mean=proof_bytes_total / tree.leaf_count,
        tree_bytes=tree_bytes,
    )


def run_tree_bench(n_entries: int, *, seed: int = 7) -> Figures:
    """Close one synthetic cycle of at least `n_entries` entries and time every step.

    Keys carry units: `<phase>_elapsed_s` (wall), `<phase>_cpu_s`, `<phase>_rate_per_s`
    (entries per wall second), `total_elapsed_s`, `proof_bytes_*`, `verify_us`, ...
    """
    rng = random.Random(seed)
    load_before = get_load_average()
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
    report["close_peak_rss_mib"] = get_peak_rss_mib()
    report.update(_sample_timing_us(close, rng))
    report["peak_rss_mib"] = get_peak_rss_mib()
    report["load_average_before"] = load_before
    report["load_average_after"] = get_load_average()
    return report


def main(argv: list[str]) -> int:
    """`python -m scripts.bench.tree N ...`: one JSON report per N, one per line."""
    for argument in argv or ["100000"]:
        print(json.dumps(run_tree_bench(int(argument.replace("_", "")))), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
