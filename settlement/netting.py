"""Netting a cycle's entries into per-partner positions, and the closed cycle they make.

Closing freezes what goes on-chain: the entries in entry-id order, the Merkle tree over
their leaves (OpenZeppelin standard layout), the root, and each partner's net position
(positive = the partner claims that much, negative = it must fund that much). A cycle
whose positions do not sum to zero is refused, as the `ClearingHouse` contract would
refuse it (`CycleNotBalanced(sum)`), so the books never propose an unbalanced cycle.

`ClosedCycle` is the one type of a closed cycle, from `close_cycle` to the outbox: the
books store it (`settlement.cycle_close`), the signers sign its `report` and the relayer
submits its `proposal`. The root stays `bytes` all along; it is hex only in the database
column, the outbox JSON and HTTP responses.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from itertools import pairwise
from typing import Final

import numpy as np

from node_api.kernel.errors import ConflictError, CreditNetValueError
from node_api.kernel.money import FEN_ZERO, Fen
from node_api.kernel.outbox import CycleProposal
from oracles.signers import CycleReport
from settlement.entries import EntryColumns, SettlementEntry, compute_leaf_hash_array
from settlement.merkle import MerkleTree, build_tree


class CycleNotBalancedError(ConflictError):
    """The cycle's net positions do not sum to zero; `sum_fen` is their sum."""

    code = "cycle_not_balanced"
    title = "Cycle not balanced"

    def __init__(self, sum_fen: Fen, *, cycle_id: int) -> None:
        super().__init__(
            f"cycle {cycle_id} does not balance: net positions sum to {sum_fen} fen",
            field="entries",
            sum_fen=sum_fen,
            cycle_id=cycle_id,
        )
        self.sum_fen = sum_fen
        self.cycle_id = cycle_id


class CycleState(StrEnum):
    """A cycle in the books: `empty` (nothing to settle), `closed` (frozen, not yet
    signed), `proposed` (signed and queued for the chain); `rejected` (an upheld dispute)
    and `defaulted` (unfunded at its deadline) are void: their events are released and the
    date is settled again under the next attempt's id."""

    EMPTY = "empty"
    CLOSED = "closed"
    PROPOSED = "proposed"
    REJECTED = "rejected"
    DEFAULTED = "defaulted"

    @property
    def is_void(self) -> bool:
        return self in (CycleState.REJECTED, CycleState.DEFAULTED)


ATTEMPT_BASE: Final = 10**8
"""Cycle ids are `attempt * ATTEMPT_BASE + yyyymmdd`; the first attempt is the date itself."""
ATTEMPTS_MAX: Final = 100


def get_cycle_id(cycle_date: date, attempt: int = 0) -> int:
    """The cycle id of a business date's `attempt` (0 first): `attempt * 10**8 + yyyymmdd`."""
    if not 0 <= attempt < ATTEMPTS_MAX:
        raise CreditNetValueError(f"attempt must be 0..{ATTEMPTS_MAX - 1}", field="attempt")
    return (
        attempt * ATTEMPT_BASE + cycle_date.year * 10_000 + cycle_date.month * 100 + cycle_date.day
    )


def get_cycle_attempt(cycle_id: int) -> int:
    """Which attempt at its business date a cycle id is (0 first)."""
    return cycle_id // ATTEMPT_BASE


def get_cycle_date(cycle_id: int) -> date:
    """The business date of a cycle id; CreditNetValueError when it is not a date."""
    day_id = cycle_id % ATTEMPT_BASE
    try:
        if get_cycle_attempt(cycle_id) >= ATTEMPTS_MAX:
            raise ValueError
        return date(day_id // 10_000, day_id // 100 % 100, day_id % 100)
    except ValueError:
        raise CreditNetValueError(
            "a cycle id is attempt * 10**8 + a date as yyyymmdd", field="cycle_id"
        ) from None


_INT64_MAX: Final = 2**63 - 1
_DENSE_PARTNER_IDS: Final = 1 << 20
"""Partner ids below this are summed in a dense array indexed by id (8 MB at most)."""


def net_positions(entries: Iterable[SettlementEntry]) -> dict[int, int]:
    """Σ amount_fen per partner id, for every partner that has an entry (zero included)."""
    positions: dict[int, int] = {}
    get = positions.get
    for entry in entries:
        positions[entry.partner_id] = get(entry.partner_id, 0) + entry.amount_fen
    return positions


@dataclass(frozen=True, slots=True)
class ClosedCycle:
    """A closed settlement cycle (amounts in fen).

    What is signed and goes on-chain: `cycle_id`, `entries_root` (None only for an empty
    cycle, which never goes on-chain), `entry_count`, `partner_ids` (ascending) and
    `net_positions_fen` aligned with them (the contract's two arrays).

    The books' bookkeeping: `state`, `event_count` (the ledger events the cycle claimed)
    and, once proposed, the quorum's `signatures` (by ascending signer address).

    The proof material is held only by a cycle closed in this process (`close_cycle`,
    `close_columns`): `entries` sorted by entry id (a tuple, or `EntryColumns` for a large
    close) and `tree` built over them in that order, so `tree.proof(i)` proves
    `entries[i]`. A cycle read back from the books (`fetch_cycle`)
    has no entries and no tree; the partner API cuts its proofs from the stored tree.
    """

    cycle_id: int
    entries_root: bytes | None
    entry_count: int
    partner_ids: tuple[int, ...]
    net_positions_fen: tuple[Fen, ...]
    state: CycleState = CycleState.CLOSED
    event_count: int = 0
    signatures: tuple[bytes, ...] = ()
    entries: Sequence[SettlementEntry] = field(default=(), repr=False)
    merkle_tree: MerkleTree | None = field(default=None, repr=False)

    @property
    def cycle_date(self) -> date:
        """The business date the cycle settles (its id is that date as `yyyymmdd`)."""
        return get_cycle_date(self.cycle_id)

    @property
    def root(self) -> bytes:
        """The entries' Merkle root; ConflictError for an empty cycle."""
        if self.entries_root is None:
            raise ConflictError(f"cycle {self.cycle_id} is empty", field="cycle_id")
        return self.entries_root

    @property
    def tree(self) -> MerkleTree:
        """The Merkle tree over `entries`; ConflictError for a cycle read from the books."""
        if self.merkle_tree is None:
            raise ConflictError(
                f"cycle {self.cycle_id} was read from the books: its tree is stored apart",
                field="cycle_id",
            )
        return self.merkle_tree

    @property
    def total_due_fen(self) -> Fen:
        """Σ of the net debtors' |positions| (= Σ of the creditors' positions)."""
        return Fen(sum(amount for amount in self.net_positions_fen if amount > 0))

    @property
    def report(self) -> CycleReport:
        """The EIP-712 `CycleReport` the signers sign; ConflictError for an empty cycle."""
        return CycleReport(
            self.cycle_id, self.root, self.entry_count, self.partner_ids, self.net_positions_fen
        )

    def to_proposal(self, signatures: Sequence[bytes]) -> CycleProposal:
        """The outbox message that proposes this cycle with the quorum's `signatures`."""
        return CycleProposal(
            self.cycle_id,
            self.root,
            self.entry_count,
            self.partner_ids,
            self.net_positions_fen,
            signatures,
        )

    def position_of(self, entry_id: int) -> int:
        """Index of `entry_id` in `entries` (binary search on the sorted ids)."""
        if isinstance(self.entries, EntryColumns):
            return self.entries.position_of(entry_id)
        index = bisect_left(self.entries, entry_id, key=_entry_id)
        if index == len(self.entries) or self.entries[index].entry_id != entry_id:
            raise CreditNetValueError("no such entry in this cycle", field="entry_id")
        return index

    def proof_for_entry(self, entry_id: int) -> list[bytes]:
        """The Merkle proof of one entry, by id."""
        return self.tree.proof(self.position_of(entry_id))

    def net_position_of(self, partner_id: int) -> Fen:
        """A partner's net position in fen; a partner without entries is at zero."""
        index = bisect_left(self.partner_ids, partner_id)
        if index < len(self.partner_ids) and self.partner_ids[index] == partner_id:
            return self.net_positions_fen[index]
        return FEN_ZERO


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
        raise CycleNotBalancedError(Fen(total_fen), cycle_id=cycle_id)


def close_cycle(cycle_id: int, entries: Iterable[SettlementEntry]) -> ClosedCycle:
    """Sort, net, check Σ = 0, hash the leaves and build the tree of one cycle."""
    ordered = sort_entries(cycle_id, entries)
    positions = net_positions(ordered)
    check_balanced(cycle_id, positions)
    return assemble_close(
        cycle_id, ordered, positions, build_tree(compute_leaf_hash_array(ordered))
    )


def sort_columns(columns: EntryColumns) -> EntryColumns:
    """`sort_entries` for columns: ascending entry ids, refusing an empty cycle and
    duplicate ids (the columns hold one cycle by construction)."""
    if not len(columns):
        raise CreditNetValueError("a cycle needs at least one entry", field="entries")
    ids = columns.entry_ids
    if not bool((ids[1:] > ids[:-1]).all()):
        order = np.argsort(ids, kind="stable")
        columns = EntryColumns(
            columns.cycle_id,
            ids[order],
            columns.partner_ids[order],
            columns.kinds[order],
            columns.amounts_fen[order],
            columns.salts[order],
            columns.source_refs,
            columns.source_ref_index[order],
        )
        ids = columns.entry_ids
    if not bool((ids[1:] != ids[:-1]).all()):
        raise CreditNetValueError("duplicate entry id in the cycle", field="entry_id")
    return columns


def net_column_positions(columns: EntryColumns) -> dict[int, int]:
    """`net_positions` of columns: Σ amount_fen per partner id, exactly.

    Summed in int64 only when no partial sum can overflow it (|amount| max times the
    entry count within int64, true of any real cycle); otherwise in Python integers.
    """
    amounts = columns.amounts_fen
    partner_ids = columns.partner_ids
    if not len(amounts):
        return {}
    bound = max(-int(amounts.min()), int(amounts.max()))
    if bound * len(amounts) > _INT64_MAX:
        exact: dict[int, int] = {}
        for partner_id, amount in zip(partner_ids.tolist(), amounts.tolist(), strict=True):
            exact[partner_id] = exact.get(partner_id, 0) + amount
        return exact
    if int(partner_ids.max()) < _DENSE_PARTNER_IDS:
        present = np.flatnonzero(np.bincount(partner_ids))
        sums = np.zeros(int(partner_ids.max()) + 1, dtype=np.int64)
        np.add.at(sums, partner_ids, amounts)
        return dict(zip(present.tolist(), sums[present].tolist(), strict=True))
    unique_ids, inverse = np.unique(partner_ids, return_inverse=True)
    sums = np.zeros(len(unique_ids), dtype=np.int64)
    np.add.at(sums, inverse, amounts)
    return dict(zip(unique_ids.tolist(), sums.tolist(), strict=True))


def close_columns(columns: EntryColumns) -> ClosedCycle:
    """`close_cycle` for a large cycle held as columns: sort, net, check Σ = 0, hash the
    leaves and build the tree, with memory bounded by the columns and the tree."""
    ordered = sort_columns(columns)
    positions = net_column_positions(ordered)
    check_balanced(ordered.cycle_id, positions)
    tree = build_tree(compute_leaf_hash_array(ordered))
    return assemble_close(ordered.cycle_id, ordered, positions, tree)


def assemble_close(
    cycle_id: int,
    ordered: Sequence[SettlementEntry],
    positions: dict[int, int],
    tree: MerkleTree,
) -> ClosedCycle:
    """Package the parts of a close (exposed so the benchmark can time each part)."""
    partner_ids = tuple(sorted(positions))
    return ClosedCycle(
        cycle_id=cycle_id,
        entries_root=tree.root,
        entry_count=len(ordered),
        partner_ids=partner_ids,
        net_positions_fen=tuple(Fen(positions[partner_id]) for partner_id in partner_ids),
        entries=ordered if isinstance(ordered, EntryColumns) else tuple(ordered),
        merkle_tree=tree,
    )
