"""The partner-side check of a settlement cycle, without any chain access.

A funding partner does not trust the lender's books. With the cycle's root, its own net
position and the cycle status read from the chain, and its entries with their proofs (from
the partner API or a file), it checks that:

1. every entry is for this cycle and this partner, and appears once;
2. every entry's leaf, salted with the salt the entry came with (`settlement.entries`),
   proves against the on-chain root (`MerkleProof.verify` semantics);
3. the proven entries sum exactly to the on-chain net position (so nothing is missing);
4. the cycle is finalized (past its dispute window, so the root can no longer change).

The report names each failing entry and why, so `creditnet verify` can print it and exit
non-zero; `VerificationReport.ok` is True only when all four hold.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from node_api.kernel.chain import CycleStatus
from node_api.kernel.errors import CreditNetValueError
from node_api.kernel.money import Fen
from settlement.entries import SettlementEntry
from settlement.merkle import HASH_BYTES, process_proof

_FINAL_STATUSES = frozenset({CycleStatus.FINALIZED, CycleStatus.FUNDED})


class FailureReason(StrEnum):
    """Why one entry failed; stable strings for reports and exit messages."""

    WRONG_CYCLE = "wrong_cycle"
    WRONG_PARTNER = "wrong_partner"
    DUPLICATE_ENTRY = "duplicate_entry"
    MALFORMED_PROOF = "malformed_proof"
    NOT_IN_ROOT = "not_in_root"


@dataclass(frozen=True, slots=True)
class ProvenEntry:
    """An entry as the partner received it (with its salt), with its Merkle proof."""

    entry: SettlementEntry
    proof: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class EntryFailure:
    entry_id: int
    reason: FailureReason


@dataclass(frozen=True, slots=True)
class VerificationReport:
    """Outcome of one partner's check of one cycle; amounts in fen."""

    partner_id: int
    cycle_id: int
    cycle_status: CycleStatus
    entry_count: int
    proven_count: int
    proven_total_fen: Fen
    net_position_fen: Fen
    failures: tuple[EntryFailure, ...]

    @property
    def cycle_finalized(self) -> bool:
        """Past the dispute window: finalized, or already funded (the root is final)."""
        return self.cycle_status in _FINAL_STATUSES

    @property
    def sum_matches(self) -> bool:
        """The proven entries add up to the on-chain net position."""
        return self.proven_total_fen == self.net_position_fen

    @property
    def ok(self) -> bool:
        return not self.failures and self.sum_matches and self.cycle_finalized


def _failure_of(
    proven: ProvenEntry, partner_id: int, cycle_id: int, root: bytes, seen: set[int]
) -> FailureReason | None:
    """Why `proven` fails, or None when it proves; checks cheapest first."""
    entry = proven.entry
    if entry.cycle_id != cycle_id:
        return FailureReason.WRONG_CYCLE
    if entry.partner_id != partner_id:
        return FailureReason.WRONG_PARTNER
    if entry.entry_id in seen:
        return FailureReason.DUPLICATE_ENTRY
    if any(len(sibling) != HASH_BYTES for sibling in proven.proof):
        return FailureReason.MALFORMED_PROOF
    if process_proof(entry.leaf_hash(), proven.proof) != root:
        return FailureReason.NOT_IN_ROOT
    return None


def verify_partner_entries(
    *,
    partner_id: int,
    cycle_id: int,
    root: bytes,
    net_position_fen: Fen,
    cycle_status: CycleStatus,
    proven_entries: Iterable[ProvenEntry],
) -> VerificationReport:
    """Check a partner's entries of one cycle against the on-chain commitments.

    Only entries that prove are summed; a duplicate is reported once per repeat and
    counted once. A root that is not 32 bytes makes every entry fail `NOT_IN_ROOT`.
    """
    seen: set[int] = set()
    failures: list[EntryFailure] = []
    entry_count = proven_total_fen = 0
    for proven in proven_entries:
        entry_count += 1
        reason = _failure_of(proven, partner_id, cycle_id, root, seen)
        if reason is None:
            seen.add(proven.entry.entry_id)
            proven_total_fen += proven.entry.amount_fen
        else:
            failures.append(EntryFailure(proven.entry.entry_id, reason))
    return VerificationReport(
        partner_id=partner_id,
        cycle_id=cycle_id,
        cycle_status=cycle_status,
        entry_count=entry_count,
        proven_count=len(seen),
        proven_total_fen=Fen(proven_total_fen),
        net_position_fen=net_position_fen,
        failures=tuple(failures),
    )


def prove_entries(
    entries: Sequence[SettlementEntry], proofs: Sequence[Sequence[bytes]]
) -> list[ProvenEntry]:
    """Pair entries with their proofs (same order), e.g. after loading an export file."""
    if len(entries) != len(proofs):
        raise CreditNetValueError("one proof per entry", field="proofs")
    return [ProvenEntry(entry, tuple(proof)) for entry, proof in zip(entries, proofs, strict=True)]
