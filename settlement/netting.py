"""Netting a cycle's entries into per-partner positions, and closing the cycle.

Closing freezes what goes on-chain: the entries in entry-id order, the Merkle tree over
their leaves (OpenZeppelin standard layout), the root, and each partner's net position
(positive = the partner claims that much, negative = it must fund that much). A cycle
whose positions do not sum to zero is refused, as the `ClearingHouse` contract would
refuse it (`CycleNotBalanced(sum)`), so the books never propose an unbalanced cycle.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from node_api.kernel.errors import ConflictError, CreditNetValueError
from oracles.signers import CycleReport
from settlement.entries import SettlementEntry, compute_leaf_hashes
from settlement.merkle import MerkleTree, build_tree


class CycleNotBalancedError(ConflictError):
    """The cycle's net positions do not sum to zero; `sum_fen` is their sum."""

    code = "cycle_not_balanced"
    title = "Cycle not balanced"

    def __init__(self, sum_fen: int, *, cycle_id: int) -> None:
        super().__init__(
            f"cycle {cycle_id} does not balance: net positions sum to {sum_fen} fen",
            field="entries",
            sum_fen=sum_fen,
            cycle_id=cycle_id,
        )
        self.sum_fen = sum_fen
        self.cycle_id = cycle_id


def net_positions(entries: Iterable[SettlementEntry]) -> dict[int, int]:
    """Σ amount_fen per partner id, for every partner that has an entry (zero included)."""
    positions: dict[int, int] = {}
    get = positions.get
    for entry in entries:
        positions[entry.partner_id] = get(entry.partner_id, 0) + entry.amount_fen
    return positions


@dataclass(frozen=True, slots=True)
class CycleClose:
    """A closed cycle: what the signers sign and the relayer submits.

    `entries` are sorted by entry id and `tree` was built over them in that order, so
    `tree.proof(i)` proves `entries[i]`. `partner_ids` ascend and `net_positions_fen` is
    aligned with them (the contract's two arrays).
    """

    cycle_id: int
    entries: tuple[SettlementEntry, ...]
    tree: MerkleTree
    partner_ids: tuple[int, ...]
    net_positions_fen: tuple[int, ...]

    @property
    def root(self) -> bytes:
        return self.tree.root

    @property
    def entry_count(self) -> int:
        return len(self.entries)

    @property
    def report(self) -> CycleReport:
        """What goes on-chain: the ClearingHouse's `CycleReport` (root as bytes)."""
        return CycleReport(
            self.cycle_id, self.root, self.entry_count, self.partner_ids, self.net_positions_fen
        )

    def position_of(self, entry_id: int) -> int:
        """Index of `entry_id` in `entries` (binary search on the sorted ids)."""
        index = bisect_left(self.entries, entry_id, key=_entry_id)
        if index == len(self.entries) or self.entries[index].entry_id != entry_id:
            raise CreditNetValueError("no such entry in this cycle", field="entry_id")
        return index

    def proof_for_entry(self, entry_id: int) -> list[bytes]:
        """The Merkle proof of one entry, by id."""
        return self.tree.proof(self.position_of(entry_id))

    def net_position_of(self, partner_id: int) -> int:
        """A partner's net position in fen; a partner without entries is at zero."""
        index = bisect_left(self.partner_ids, partner_id)
        if index < len(self.partner_ids) and self.partner_ids[index] == partner_id:
            return self.net_positions_fen[index]
        return 0


def _entry_id(entry: SettlementEntry) -> int:
    return entry.entry_id


def sort_entries(cycle_id: int, entries: Iterable[SettlementEntry]) -> tuple[SettlementEntry, ...]:
    """The cycle's entries in entry-id order, refusing foreign cycles and duplicate ids."""
    ordered = tuple(sorted(entries, key=_entry_id))
    if not ordered:
        raise CreditNetValueError("a cycle needs at least one entry", field="entries")
    if any(entry.cycle_id != cycle_id for entry in ordered):
        raise CreditNetValueError("entry belongs to another cycle", field="cycle_id")
    for previous, entry in pairwise(ordered):
        if previous.entry_id == entry.entry_id:
            raise CreditNetValueError("duplicate entry id in the cycle", field="entry_id")
    return ordered


def check_balanced(cycle_id: int, positions: dict[int, int]) -> None:
    """Raise `CycleNotBalancedError` unless the positions sum to zero."""
    total_fen = sum(positions.values())
    if total_fen != 0:
        raise CycleNotBalancedError(total_fen, cycle_id=cycle_id)


def close_cycle(cycle_id: int, entries: Iterable[SettlementEntry]) -> CycleClose:
    """Sort, net, check Σ = 0, hash the leaves and build the tree of one cycle."""
    ordered = sort_entries(cycle_id, entries)
    positions = net_positions(ordered)
    check_balanced(cycle_id, positions)
    return assemble_close(cycle_id, ordered, positions, build_tree(compute_leaf_hashes(ordered)))


def assemble_close(
    cycle_id: int,
    ordered: Sequence[SettlementEntry],
    positions: dict[int, int],
    tree: MerkleTree,
) -> CycleClose:
    """Package the parts of a close (exposed so the benchmark can time each part)."""
    partner_ids = tuple(sorted(positions))
    return CycleClose(
        cycle_id=cycle_id,
        entries=tuple(ordered),
        tree=tree,
        partner_ids=partner_ids,
        net_positions_fen=tuple(positions[partner_id] for partner_id in partner_ids),
    )
