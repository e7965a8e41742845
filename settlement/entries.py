"""Settlement entries and their Merkle leaves.

A settlement entry is one signed amount owed to or by one partner in one cycle. The sign
is from the partner's side: positive means the partner receives `amount_fen`, negative
means it pays. A partner's net position is the sum of its entries; across all partners
of a cycle the net positions sum to zero (see `settlement.netting`).

On-chain an entry is an OpenZeppelin `StandardMerkleTree` leaf with the types
`["uint64", "uint64", "uint32", "uint8", "int256", "bytes32"]` over
`(cycleId, entryId, partnerId, kind, amountFen, salt)`, exactly as
`ClearingHouse.computeEntryLeaf` hashes it:

    leaf = keccak256(keccak256(abi.encode(uint64 cycleId, uint64 entryId, uint32 partnerId,
                                          uint8 kind, int256 amountFen, bytes32 salt)))

All six types are static, so `abi.encode` is six 32-byte words, 192 bytes: the five
integers big-endian and zero-padded on the left (`amountFen` in two's complement, so a
negative amount is padded with 0xff), then the 32 salt bytes as they are. It is built here
directly with `int.to_bytes`, which is several times cheaper than `eth_abi.encode` per call
and byte-identical to it (the tests check that).

The salt is the entry's private 32 bytes, derived from the node's secret
(`settlement.salts`: HMAC-SHA256 of the partner's secret over the cycle and entry ids). It
keeps the sibling hashes in a proof from revealing other partners' entries: without it a
leaf's few small fields could be found by trying every plausible amount. Only the entry's
partner (and an auditor, through the books' export) is given it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import overload

import numpy as np
import numpy.typing as npt
from sha3 import keccak_256

from node_api.kernel.chain import EntryKind
from node_api.kernel.errors import CreditNetValueError
from node_api.kernel.money import Fen

LEAF_ABI_TYPES: tuple[str, ...] = ("uint64", "uint64", "uint32", "uint8", "int256", "bytes32")
"""The Solidity types of a leaf's values, in order (for `StandardMerkleTree.of`)."""

LEAF_ENCODED_BYTES = 6 * 32
SALT_BYTES = 32

_UINT64_MAX = 2**64 - 1
_UINT32_MAX = 2**32 - 1
_INT256_MIN = -(2**255)
_INT256_MAX = 2**255 - 1
_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_LEAF_CHUNK_ENTRIES = 1 << 16
"""Entries encoded and hashed per batch by `compute_leaf_hash_array` (~12 MB of scratch)."""


_KIND_VALUES = frozenset(int(kind) for kind in EntryKind)


@dataclass(frozen=True, slots=True)
class SettlementEntry:
    """One partner's signed amount in one cycle; `source_ref` stays off-chain.

    `salt` is the entry's private 32 bytes, part of the leaf (`settlement.salts` derives
    it). `source_ref` names the ledger posting or business key the entry came from, so every
    entry can be traced back to the books; it is not part of the leaf.
    """

    cycle_id: int
    entry_id: int
    partner_id: int
    kind: EntryKind
    amount_fen: Fen
    salt: bytes
    source_ref: str = ""

    def __post_init__(self) -> None:
        if not 0 <= self.cycle_id <= _UINT64_MAX:
            raise CreditNetValueError("cycle id must fit uint64", field="cycle_id")
        if not 0 <= self.entry_id <= _UINT64_MAX:
            raise CreditNetValueError("entry id must fit uint64", field="entry_id")
        if not 0 <= self.partner_id <= _UINT32_MAX:
            raise CreditNetValueError("partner id must fit uint32", field="partner_id")
        if self.kind not in _KIND_VALUES:
            raise CreditNetValueError("unknown entry kind", field="kind")
        if not _INT256_MIN <= self.amount_fen <= _INT256_MAX:
            raise CreditNetValueError("amount must fit int256", field="amount_fen")
        if type(self.salt) is not bytes or len(self.salt) != SALT_BYTES:
            raise CreditNetValueError("salt must be 32 bytes", field="salt")

    def leaf_values(self) -> tuple[int, int, int, int, int, bytes]:
        """The leaf's values in ABI order, as passed to `StandardMerkleTree.of`."""
        return (
            self.cycle_id,
            self.entry_id,
            self.partner_id,
            int(self.kind),
            self.amount_fen,
            self.salt,
        )

    def encode_leaf(self) -> bytes:
        """`abi.encode(cycleId, entryId, partnerId, kind, amountFen, salt)`: 192 bytes."""
        return b"".join(
            (
                self.cycle_id.to_bytes(32, "big"),
                self.entry_id.to_bytes(32, "big"),
                self.partner_id.to_bytes(32, "big"),
                int(self.kind).to_bytes(32, "big"),
                self.amount_fen.to_bytes(32, "big", signed=True),
                self.salt,
            )
        )

    def leaf_hash(self) -> bytes:
        """`keccak256(keccak256(abi.encode(...)))`, the OpenZeppelin standard leaf."""
        digest: bytes = keccak_256(keccak_256(self.encode_leaf()).digest()).digest()
        return digest


def compute_leaf_hashes(entries: Sequence[SettlementEntry]) -> list[bytes]:
    """Leaf hashes of many entries, in order: the batch hot path of a cycle close.

    Same bytes as `SettlementEntry.leaf_hash`, with the per-call overhead taken out (local
    names, one concatenation per leaf); a million entries take about 2 s on one core (the
    sixth word, the salt, costs nothing extra: 160 and 192 bytes are both two keccak blocks).
    """
    keccak = keccak_256
    return [
        keccak(
            keccak(
                entry.cycle_id.to_bytes(32, "big")
                + entry.entry_id.to_bytes(32, "big")
                + entry.partner_id.to_bytes(32, "big")
                + entry.kind.to_bytes(32, "big")
                + entry.amount_fen.to_bytes(32, "big", signed=True)
                + entry.salt
            ).digest()
        ).digest()
        for entry in entries
    ]


def sum_amounts_fen(entries: Iterable[SettlementEntry]) -> int:
    """Σ amount_fen over `entries` (zero for a balanced set)."""
    return sum(entry.amount_fen for entry in entries)


@dataclass(frozen=True, slots=True, eq=False)
class EntryColumns(Sequence[SettlementEntry]):
    """One cycle's entries as columns, for closes too large for one object per entry.

    Ten million `SettlementEntry` objects take about 3 GB; as columns they take 55 bytes
    each (`entry_ids` u64, `partner_ids` u32, `kinds` u8, `amounts_fen` i64, `salts`
    32 bytes, `source_ref_index` i32 into the distinct `source_refs`). Amounts are int64
    here, the range of the books' BIGINT columns; `from_entries` refuses wider ones.

    It is a read-only `Sequence[SettlementEntry]`: `columns[i]` builds the `i`-th entry, so
    code written for a tuple of entries (a proof for one entry, a sample) works unchanged.
    """

    cycle_id: int
    entry_ids: npt.NDArray[np.uint64]
    partner_ids: npt.NDArray[np.uint32]
    kinds: npt.NDArray[np.uint8]
    amounts_fen: npt.NDArray[np.int64]
    salts: npt.NDArray[np.uint8]
    source_refs: tuple[str, ...]
    source_ref_index: npt.NDArray[np.int32]

    def __post_init__(self) -> None:
        if not 0 <= self.cycle_id <= _UINT64_MAX:
            raise CreditNetValueError("cycle id must fit uint64", field="cycle_id")
        count = len(self.entry_ids)
        columns = (
            ("entry_ids", np.uint64),
            ("partner_ids", np.uint32),
            ("kinds", np.uint8),
            ("amounts_fen", np.int64),
            ("source_ref_index", np.int32),
        )
        for name, dtype in columns:
            column = getattr(self, name)
            if column.dtype != dtype or column.shape != (count,):
                raise CreditNetValueError(f"{name} must be {count} values of {dtype}", field=name)
        if self.salts.dtype != np.uint8 or self.salts.shape != (count, SALT_BYTES):
            raise CreditNetValueError("salt must be 32 bytes", field="salt")
        if not np.isin(self.kinds, np.array(sorted(_KIND_VALUES), dtype=np.uint8)).all():
            raise CreditNetValueError("unknown entry kind", field="kind")
        index = self.source_ref_index
        if count and (int(index.min()) < 0 or int(index.max()) >= len(self.source_refs)):
            raise CreditNetValueError("source ref index out of range", field="source_ref")

    @classmethod
    def from_entries(cls, cycle_id: int, entries: Sequence[SettlementEntry]) -> EntryColumns:
        """The columns of `entries` (all of cycle `cycle_id`, amounts within int64)."""
        if any(entry.cycle_id != cycle_id for entry in entries):
            raise CreditNetValueError("entry belongs to another cycle", field="cycle_id")
        if any(not _INT64_MIN <= entry.amount_fen <= _INT64_MAX for entry in entries):
            raise CreditNetValueError("amount must fit int64 in columns", field="amount_fen")
        refs: dict[str, int] = {}
        ref_index = [refs.setdefault(entry.source_ref, len(refs)) for entry in entries]
        salts = b"".join(entry.salt for entry in entries)
        return cls(
            cycle_id,
            np.array([entry.entry_id for entry in entries], dtype=np.uint64),
            np.array([entry.partner_id for entry in entries], dtype=np.uint32),
            np.array([int(entry.kind) for entry in entries], dtype=np.uint8),
            np.array([entry.amount_fen for entry in entries], dtype=np.int64),
            np.frombuffer(salts, dtype=np.uint8).reshape(len(entries), SALT_BYTES),
            tuple(refs) or ("",),
            np.array(ref_index, dtype=np.int32),
        )

    def __len__(self) -> int:
        return len(self.entry_ids)

    @overload
    def __getitem__(self, index: int) -> SettlementEntry: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[SettlementEntry]: ...

    def __getitem__(self, index: int | slice) -> SettlementEntry | Sequence[SettlementEntry]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return SettlementEntry(
            self.cycle_id,
            int(self.entry_ids[index]),
            int(self.partner_ids[index]),
            EntryKind(int(self.kinds[index])),
            Fen(int(self.amounts_fen[index])),
            self.salts[index].tobytes(),
            self.source_refs[int(self.source_ref_index[index])],
        )

    def position_of(self, entry_id: int) -> int:
        """Index of `entry_id` (the ids must be ascending, as a closed cycle's are)."""
        position = int(np.searchsorted(self.entry_ids, np.uint64(entry_id)))
        if position == len(self) or int(self.entry_ids[position]) != entry_id:
            raise CreditNetValueError("no such entry in this cycle", field="entry_id")
        return position

    def encode_leaves(self, start: int, stop: int) -> bytes:
        """`abi.encode(...)` of entries `start..stop-1`, 192 bytes each, back to back.

        Vectorised: the integer words are written big-endian into a zeroed array, the
        amount's upper 24 bytes set to 0xff when it is negative (two's complement of an
        int64 widened to int256).
        """
        count = stop - start
        words = np.zeros((count, LEAF_ENCODED_BYTES), dtype=np.uint8)
        words[:, 24:32] = np.frombuffer(self.cycle_id.to_bytes(8, "big"), dtype=np.uint8)
        words[:, 56:64] = _big_endian_bytes(self.entry_ids[start:stop], ">u8")
        words[:, 92:96] = _big_endian_bytes(self.partner_ids[start:stop], ">u4")
        words[:, 127] = self.kinds[start:stop]
        amounts = self.amounts_fen[start:stop]
        words[:, 128:152] = np.where(amounts < 0, np.uint8(0xFF), np.uint8(0))[:, None]
        words[:, 152:160] = _big_endian_bytes(amounts, ">i8")
        words[:, 160:192] = self.salts[start:stop]
        return words.tobytes()


def _big_endian_bytes(values: npt.NDArray[np.generic], dtype: str) -> npt.NDArray[np.uint8]:
    return values.astype(dtype).view(np.uint8).reshape(len(values), -1)


def compute_leaf_hash_array(entries: Sequence[SettlementEntry]) -> npt.NDArray[np.uint8]:
    """Leaf hashes of many entries as an `(n, 32)` array, in order (`build_tree` takes it).

    Entries given as `EntryColumns` (or convertible: one cycle, int64 amounts) are encoded
    in vectorised batches and only the two keccak calls per leaf run in Python; others
    take `compute_leaf_hashes`. Same bytes as `SettlementEntry.leaf_hash` either way.
    """
    columns: EntryColumns | None = entries if isinstance(entries, EntryColumns) else None
    if columns is None and entries:
        cycle_id = entries[0].cycle_id
        try:
            columns = EntryColumns.from_entries(cycle_id, entries)
        except CreditNetValueError:
            columns = None
    if columns is None:
        joined = b"".join(compute_leaf_hashes(entries))
        return np.frombuffer(joined, dtype=np.uint8).reshape(len(entries), 32)
    keccak = keccak_256
    width = LEAF_ENCODED_BYTES
    hashes = np.empty((len(columns), 32), dtype=np.uint8)
    for start in range(0, len(columns), _LEAF_CHUNK_ENTRIES):
        stop = min(start + _LEAF_CHUNK_ENTRIES, len(columns))
        data = columns.encode_leaves(start, stop)
        digests = b"".join(
            [
                keccak(keccak(data[offset : offset + width]).digest()).digest()
                for offset in range(0, len(data), width)
            ]
        )
        hashes[start:stop] = np.frombuffer(digests, dtype=np.uint8).reshape(-1, 32)
    return hashes
