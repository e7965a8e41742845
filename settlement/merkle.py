"""Merkle trees laid out exactly as OpenZeppelin's `StandardMerkleTree` lays them out.

Why this layout: funding partners and the `ClearingHouse` contract check settlement entries
with OpenZeppelin's `MerkleProof.verify`, and partners may rebuild a cycle's tree with
`@openzeppelin/merkle-tree`. Both only agree with us if roots and proofs are bit-identical,
so this module follows that library's documented algorithm:

- leaves are 32-byte leaf hashes (the caller double-hashes the ABI-encoded values);
- by default the leaves are sorted ascending by hash (a stable sort, so equal hashes keep
  their input order);
- the tree is one array of `2n - 1` nodes; the leaf in sorted position `p` sits at index
  `2n - 2 - p` (so the last array slot holds the smallest hash); node `i` has children
  `2i + 1` and `2i + 2`, parent `(i - 1) // 2`, and sibling `i + 1` when `i` is odd,
  `i - 1` when even;
- an inner node is `keccak256(min(a, b) ‖ max(a, b))` (sorted-pair hashing), which is what
  makes a proof a plain list of siblings with no left/right flags;
- a proof lists the siblings from the leaf up to (not including) the root.

The tree is stored as one immutable blob of `(2n - 1) * 32` bytes plus a table mapping each
leaf's input position to its array index, so the books can store a cycle's tree once and
serve any proof on demand in microseconds instead of storing one proof row per entry.

Building is level by level over numpy arrays of 32-byte nodes, so memory stays at about
three times the node blob whatever the size (ten million leaves: a 640 MB blob, about
2 GB at the peak) instead of one Python object per node. In the heap layout each level's
inner nodes are one contiguous index range whose children are the contiguous range just
after it, so a level is hashed in chunks: the pairs are ordered (the smaller node first)
with vectorised comparisons and only the keccak call itself runs once per node in Python.
The sort is numpy's stable argsort on the first 8 bytes of each hash, with the (rare) runs
of equal prefixes re-sorted on the full hash, which is a stable sort on the full hash.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import overload

import numpy as np
import numpy.typing as npt
from sha3 import keccak_256

from node_api.kernel.errors import CreditNetValueError

HASH_BYTES = 32
"""Every node, leaf hash and proof element is 32 bytes."""

SERIAL_MAGIC = b"CNMT\x01"
"""Prefix of a serialised tree: format name and version 1."""

_HEADER_BYTES = len(SERIAL_MAGIC) + 4
_PROOF_CHUNK_LEAVES = 1 << 16
"""Leaves per vectorised batch when cutting proofs: bounds the scratch memory (~40 MB)."""
_HASH_CHUNK_PAIRS = 1 << 16
"""Pairs hashed per batch while building a level: bounds the scratch memory (~12 MB)."""
_LEAF_INDEX_MAX = 2**32 - 1
"""The serialised index table holds u32 tree indices, so a tree has at most 2**31 leaves."""

NodeArray = npt.NDArray[np.uint8]
"""Nodes or leaf hashes as an `(count, 32)` array of bytes."""
IndexArray = npt.NDArray[np.int64]


def hash_pair(left: bytes, right: bytes) -> bytes:
    """Hash two nodes in sorted order, as OpenZeppelin's `Hashes.commutativeKeccak256`."""
    digest: bytes = keccak_256(left + right if left < right else right + left).digest()
    return digest


def process_proof(leaf_hash: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that `proof` implies for `leaf_hash` (OpenZeppelin `MerkleProof.processProof`)."""
    node = leaf_hash
    for sibling in proof:
        node = keccak_256(node + sibling if node < sibling else sibling + node).digest()
    return node


def verify(root: bytes, leaf_hash: bytes, proof: Sequence[bytes]) -> bool:
    """True when `proof` links `leaf_hash` to `root` (OpenZeppelin `MerkleProof.verify`).

    Malformed input (a node that is not 32 bytes) is simply not a valid proof: the contract
    would reject it too, so this returns False rather than raising.
    """
    if len(root) != HASH_BYTES or len(leaf_hash) != HASH_BYTES:
        return False
    if any(len(sibling) != HASH_BYTES for sibling in proof):
        return False
    return process_proof(leaf_hash, proof) == root


def pack_proof(proof: Sequence[bytes]) -> bytes:
    """One proof as a single blob of `32 * depth` bytes (the bulk-export form)."""
    return b"".join(proof)


def unpack_proof(packed: bytes) -> list[bytes]:
    """Split a packed proof back into its 32-byte siblings."""
    if len(packed) % HASH_BYTES:
        raise CreditNetValueError("a packed proof is a multiple of 32 bytes", field="proof")
    return [packed[offset : offset + HASH_BYTES] for offset in range(0, len(packed), HASH_BYTES)]


class _SortedLeafView(Sequence[bytes]):
    """The leaves in ascending hash order, read straight out of the node blob (for bisect)."""

    __slots__ = ("_last", "_nodes", "_size")

    def __init__(self, nodes: bytes, leaf_count: int) -> None:
        self._nodes = nodes
        self._size = leaf_count
        self._last = 2 * leaf_count - 2

    def __len__(self) -> int:
        return self._size

    @overload
    def __getitem__(self, position: int) -> bytes: ...

    @overload
    def __getitem__(self, position: slice) -> Sequence[bytes]: ...

    def __getitem__(self, position: int | slice) -> bytes | Sequence[bytes]:
        if isinstance(position, slice):
            return [self[p] for p in range(*position.indices(self._size))]
        offset = (self._last - position) * HASH_BYTES
        return self._nodes[offset : offset + HASH_BYTES]


@dataclass(frozen=True, slots=True, eq=False)
class ProofBatch:
    """Proofs of a batch of leaves of equal depth: `packed[k]` (`depth * 32` bytes) proves
    the leaf given at input position `positions[k]`."""

    positions: IndexArray
    packed: NodeArray

    @property
    def proof_bytes(self) -> int:
        """Bytes of each proof in the batch (`32 * depth`)."""
        return int(self.packed.shape[1])


@dataclass(frozen=True, slots=True, eq=False)
class MerkleTree:
    """An OpenZeppelin-layout tree: `nodes` holds all `2n - 1` nodes back to back.

    `tree_indices[i]` is the array index of the `i`-th leaf in the order the caller gave
    them (OpenZeppelin's `values[i].treeIndex`), a read-only int64 array. Build one with
    `build_tree`; two trees are equal when their nodes and index tables are.
    """

    nodes: bytes
    leaf_count: int
    tree_indices: IndexArray

    def __post_init__(self) -> None:
        indices = np.array(self.tree_indices, dtype=np.int64)
        indices.flags.writeable = False
        object.__setattr__(self, "tree_indices", indices)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MerkleTree):
            return NotImplemented
        return (
            self.leaf_count == other.leaf_count
            and self.nodes == other.nodes
            and np.array_equal(self.tree_indices, other.tree_indices)
        )

    __hash__ = None  # type: ignore[assignment]

    @property
    def root(self) -> bytes:
        """The 32-byte root, as submitted on-chain."""
        return self.nodes[:HASH_BYTES]

    @property
    def node_count(self) -> int:
        return 2 * self.leaf_count - 1

    def node(self, tree_index: int) -> bytes:
        """The node at array index `tree_index`."""
        offset = tree_index * HASH_BYTES
        return self.nodes[offset : offset + HASH_BYTES]

    def leaf(self, index: int) -> bytes:
        """The leaf hash given at input position `index`."""
        return self.node(int(self.tree_indices[index]))

    def proof(self, index: int) -> list[bytes]:
        """The proof of the leaf given at input position `index` (OpenZeppelin `getProof`)."""
        if not 0 <= index < self.leaf_count:
            raise CreditNetValueError("leaf index out of range", field="index")
        return self.proof_at(int(self.tree_indices[index]))

    def proof_at(self, tree_index: int) -> list[bytes]:
        """The proof of the leaf stored at array index `tree_index`."""
        if not self.leaf_count - 1 <= tree_index < self.node_count:
            raise CreditNetValueError("tree index is not a leaf", field="tree_index")
        nodes = self.nodes
        proof = []
        while tree_index > 0:
            offset = (tree_index + 1 if tree_index & 1 else tree_index - 1) * HASH_BYTES
            proof.append(nodes[offset : offset + HASH_BYTES])
            tree_index = (tree_index - 1) >> 1
        return proof

    def tree_index_of(self, leaf_hash: bytes) -> int:
        """The array index holding `leaf_hash`, found by binary search over the sorted leaves.

        This is how a stored tree serves a proof for an entry: rehash the entry and look it
        up. Only meaningful for trees built with sorted leaves (the standard layout).
        """
        sorted_leaves = _SortedLeafView(self.nodes, self.leaf_count)
        position = bisect_left(sorted_leaves, leaf_hash)
        if position == self.leaf_count or sorted_leaves[position] != leaf_hash:
            raise CreditNetValueError("leaf is not in the tree", field="leaf_hash")
        return self.node_count - 1 - position

    def proof_for_leaf(self, leaf_hash: bytes) -> list[bytes]:
        """The proof of `leaf_hash`, located by binary search (see `tree_index_of`)."""
        return self.proof_at(self.tree_index_of(leaf_hash))

    def iter_proof_batches(self, batch_leaves: int = _PROOF_CHUNK_LEAVES) -> Iterator[ProofBatch]:
        """Every leaf's proof, in batches of at most `batch_leaves` leaves of equal depth.

        The streaming form of `all_proofs_packed`: the sibling indices of a batch are
        computed level by level and gathered in one numpy copy, and only one batch is held
        at a time, so cutting all ten million proofs of a large cycle needs tens of MB.
        Batches follow the array layout (descending hash order), not the input order.
        """
        node_view = np.frombuffer(self.nodes, dtype=np.dtype((np.void, HASH_BYTES)))
        first_leaf = self.leaf_count - 1
        positions_by_slot = np.empty(self.leaf_count, dtype=np.int64)
        positions_by_slot[self.tree_indices - first_leaf] = np.arange(self.leaf_count)
        for start, stop, depth in _equal_depth_ranges(first_leaf, self.node_count):
            for chunk_start in range(start, stop, batch_leaves):
                current = np.arange(chunk_start, min(chunk_start + batch_leaves, stop))
                positions = positions_by_slot[current - first_leaf]
                siblings = np.empty((len(current), depth), dtype=np.int64)
                for level in range(depth):
                    siblings[:, level] = current - 1 + 2 * (current & 1)
                    current = (current - 1) >> 1
                gathered = np.take(node_view, siblings).view(np.uint8)
                yield ProofBatch(positions, gathered.reshape(len(positions), depth * HASH_BYTES))

    def all_proofs_packed(self) -> list[bytes]:
        """Every leaf's proof, packed (`pack_proof` form), in input order.

        Holds every proof at once as Python bytes; for large trees stream them with
        `iter_proof_batches` instead.
        """
        packed: list[bytes] = [b""] * self.leaf_count
        for batch in self.iter_proof_batches():
            width = batch.proof_bytes
            if width == 0:
                continue  # a one-leaf tree: its leaf is the root and the proof is empty
            blob = batch.packed.tobytes()
            for position, offset in zip(
                batch.positions.tolist(), range(0, len(blob), width), strict=True
            ):
                packed[position] = blob[offset : offset + width]
        return packed

    def to_bytes(self) -> bytes:
        """Serialise: magic+version, u32 leaf count, the node blob, u32 tree index per leaf.

        Size is `9 + (2n - 1) * 32 + 4n` bytes (about 68 MB for a million leaves).
        """
        index_table = self.tree_indices.astype(">u4").tobytes()
        count = self.leaf_count.to_bytes(4, "big")
        return b"".join((SERIAL_MAGIC, count, self.nodes, index_table))

    @classmethod
    def from_bytes(cls, blob: bytes) -> MerkleTree:
        """Restore a tree written by `to_bytes`; checks the framing, not every hash."""
        if blob[: len(SERIAL_MAGIC)] != SERIAL_MAGIC or len(blob) < _HEADER_BYTES:
            raise CreditNetValueError("not a serialised CreditNet Merkle tree", field="blob")
        leaf_count = int.from_bytes(blob[len(SERIAL_MAGIC) : _HEADER_BYTES], "big")
        nodes_end = _HEADER_BYTES + (2 * leaf_count - 1) * HASH_BYTES
        if leaf_count == 0 or len(blob) != nodes_end + 4 * leaf_count:
            raise CreditNetValueError("serialised tree has the wrong length", field="blob")
        indices = np.frombuffer(blob, dtype=">u4", offset=nodes_end).astype(np.int64)
        return cls(bytes(blob[_HEADER_BYTES:nodes_end]), leaf_count, indices)

    def is_consistent(self) -> bool:
        """Recompute every inner node and compare (OpenZeppelin `isValidMerkleTree`), and
        check that the index table places every leaf in its own leaf slot."""
        nodes = np.frombuffer(self.nodes, dtype=np.uint8).reshape(self.node_count, HASH_BYTES)
        recomputed = nodes.copy()
        _hash_inner_nodes(recomputed, self.leaf_count)
        if not np.array_equal(recomputed, nodes):
            return False
        slots = np.unique(self.tree_indices)
        return (
            len(slots) == self.leaf_count
            and int(slots[0]) == self.leaf_count - 1
            and int(slots[-1]) == self.node_count - 1
        )


def _equal_depth_ranges(first_leaf: int, node_count: int) -> Iterator[tuple[int, int, int]]:
    """(start, stop, depth) of the runs of leaf slots `[first_leaf, node_count)` that share
    a depth: in the heap layout depth `d` is the index range `[2**d - 1, 2**(d+1) - 1)`."""
    start = first_leaf
    while start < node_count:
        depth = (start + 1).bit_length() - 1
        stop = min(node_count, (1 << (depth + 1)) - 1)
        yield start, stop, depth
        start = stop


def as_leaf_array(leaf_hashes: Sequence[bytes] | NodeArray) -> NodeArray:
    """Leaf hashes as an `(n, 32)` uint8 array (a list of 32-byte strings is joined once)."""
    if isinstance(leaf_hashes, np.ndarray):
        if leaf_hashes.ndim != 2 or leaf_hashes.shape[1] != HASH_BYTES:
            raise CreditNetValueError("every leaf hash is 32 bytes", field="leaf_hashes")
        return np.ascontiguousarray(leaf_hashes, dtype=np.uint8)
    if any(len(leaf) != HASH_BYTES for leaf in leaf_hashes):
        raise CreditNetValueError("every leaf hash is 32 bytes", field="leaf_hashes")
    joined = b"".join(leaf_hashes)
    return np.frombuffer(joined, dtype=np.uint8).reshape(len(leaf_hashes), HASH_BYTES)


def build_tree(leaf_hashes: Sequence[bytes] | NodeArray, *, sort_leaves: bool = True) -> MerkleTree:
    """Build the tree over `leaf_hashes` (each 32 bytes), as `StandardMerkleTree.of` does.

    `leaf_hashes` is a sequence of 32-byte strings or, for large cycles, an `(n, 32)` uint8
    array (see `settlement.entries.compute_leaf_hash_array`). `sort_leaves=False` mirrors
    OpenZeppelin's option of the same name and exists for compatibility tests; settlement
    always uses the sorted (default) layout.
    """
    leaves = as_leaf_array(leaf_hashes)
    leaf_count = len(leaves)
    if leaf_count == 0:
        raise CreditNetValueError("a Merkle tree needs at least one leaf", field="leaf_hashes")
    if leaf_count > _LEAF_INDEX_MAX // 2:
        raise CreditNetValueError("too many leaves for one tree", field="leaf_hashes")
    order = sort_leaf_order(leaves) if sort_leaves else np.arange(leaf_count, dtype=np.int64)
    node_count = 2 * leaf_count - 1
    nodes = np.empty((node_count, HASH_BYTES), dtype=np.uint8)
    nodes[leaf_count - 1 :] = leaves[order[::-1]]
    tree_indices = np.empty(leaf_count, dtype=np.int64)
    tree_indices[order] = np.arange(node_count - 1, leaf_count - 2, -1, dtype=np.int64)
    del leaves
    _hash_inner_nodes(nodes, leaf_count)
    return MerkleTree(nodes.tobytes(), leaf_count, tree_indices)


def sort_leaf_order(leaves: NodeArray) -> IndexArray:
    """Input positions in ascending hash order; equal hashes keep their input order."""
    prefixes = leaves[:, :8].copy().view(">u8").ravel()
    order = np.argsort(prefixes, kind="stable")
    sorted_prefixes = prefixes[order]
    tied = np.flatnonzero(sorted_prefixes[1:] == sorted_prefixes[:-1])
    if tied.size:
        _resolve_prefix_ties(leaves, order, tied)
    return order.astype(np.int64, copy=False)


def _resolve_prefix_ties(leaves: NodeArray, order: IndexArray, tied: IndexArray) -> None:
    """Re-sort, on the full hash, each run of sorted positions whose 8-byte prefixes are
    equal (`tied[k]` and `tied[k] + 1` are equal); Python's sort is stable too."""
    run_start = int(tied[0])
    previous = run_start
    for position in [*tied.tolist()[1:], -2]:
        if position != previous + 1:
            run = order[run_start : previous + 2].tolist()
            order[run_start : previous + 2] = sorted(run, key=lambda i: leaves[i].tobytes())
            run_start = position
        previous = position


def _inner_level_ranges(leaf_count: int) -> list[tuple[int, int]]:
    """`(first, stop)` array-index ranges of the inner nodes of each level, deepest first."""
    ranges = []
    first, width = 0, 1
    while first < leaf_count - 1:
        ranges.append((first, min(first + width, leaf_count - 1)))
        first += width
        width *= 2
    return ranges[::-1]


def _hash_inner_nodes(nodes: NodeArray, leaf_count: int) -> None:
    """Fill the inner nodes of `nodes` (leaves already placed) bottom-up, level by level.

    The children of the inner range `[first, stop)` are the contiguous range
    `[2 * first + 1, 2 * stop + 1)`, already computed (a deeper level or the leaves).
    """
    for first, stop in _inner_level_ranges(leaf_count):
        for start in range(first, stop, _HASH_CHUNK_PAIRS):
            end = min(start + _HASH_CHUNK_PAIRS, stop)
            children = nodes[2 * start + 1 : 2 * end + 1].reshape(end - start, 2 * HASH_BYTES)
            parents = hash_sorted_pairs(children)
            nodes[start:end] = np.frombuffer(parents, dtype=np.uint8).reshape(-1, HASH_BYTES)


def hash_sorted_pairs(pairs: NodeArray) -> bytes:
    """`commutativeKeccak256` of each row of an `(m, 64)` array of two nodes, joined.

    Each row's smaller node is put first with vectorised comparisons (the two nodes read
    as four big-endian u64 words each, compared at their first differing word), so the
    per-node Python work is one keccak call.
    """
    words = pairs.view(">u8")
    left, right = words[:, :4], words[:, 4:]
    first_difference = (left != right).argmax(axis=1)
    rows = np.arange(len(words))
    swap = left[rows, first_difference] > right[rows, first_difference]
    ordered = pairs.copy()
    ordered[swap] = np.concatenate((pairs[swap, HASH_BYTES:], pairs[swap, :HASH_BYTES]), axis=1)
    data = ordered.tobytes()
    keccak = keccak_256
    step = 2 * HASH_BYTES
    return b"".join(
        [keccak(data[offset : offset + step]).digest() for offset in range(0, len(data), step)]
    )
