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
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from typing import overload

import numpy as np
from sha3 import keccak_256

from node_api.kernel.errors import CreditNetValueError

HASH_BYTES = 32
"""Every node, leaf hash and proof element is 32 bytes."""

SERIAL_MAGIC = b"CNMT\x01"
"""Prefix of a serialised tree: format name and version 1."""

_HEADER_BYTES = len(SERIAL_MAGIC) + 4
_PROOF_CHUNK_LEAVES = 1 << 16
"""Leaves per vectorised batch in `all_proofs_packed`: bounds the scratch memory (~40 MB)."""


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


@dataclass(frozen=True, slots=True)
class MerkleTree:
    """An OpenZeppelin-layout tree: `nodes` holds all `2n - 1` nodes back to back.

    `tree_indices[i]` is the array index of the `i`-th leaf in the order the caller gave
    them (OpenZeppelin's `values[i].treeIndex`). Build one with `build_tree`.
    """

    nodes: bytes
    leaf_count: int
    tree_indices: tuple[int, ...]

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
        return self.node(self.tree_indices[index])

    def proof(self, index: int) -> list[bytes]:
        """The proof of the leaf given at input position `index` (OpenZeppelin `getProof`)."""
        if not 0 <= index < self.leaf_count:
            raise CreditNetValueError("leaf index out of range", field="index")
        return self.proof_at(self.tree_indices[index])

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

    def all_proofs_packed(self) -> list[bytes]:
        """Every leaf's proof, packed (`pack_proof` form), in input order.

        Vectorised with numpy: the sibling indices of a whole batch of leaves are computed
        level by level and gathered in one copy, which is several times faster than walking
        a million leaves one node at a time in Python.
        """
        return _all_proofs_packed(self.nodes, self.leaf_count, self.tree_indices)

    def to_bytes(self) -> bytes:
        """Serialise: magic+version, u32 leaf count, the node blob, u32 tree index per leaf.

        Size is `9 + (2n - 1) * 32 + 4n` bytes (about 68 MB for a million leaves).
        """
        index_table = np.asarray(self.tree_indices, dtype=">u4").tobytes()
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
        indices = np.frombuffer(blob, dtype=">u4", offset=nodes_end).tolist()
        return cls(bytes(blob[_HEADER_BYTES:nodes_end]), leaf_count, tuple(indices))

    def is_consistent(self) -> bool:
        """Recompute every inner node and compare (OpenZeppelin `isValidMerkleTree`)."""
        for index in range(self.leaf_count - 2, -1, -1):
            if self.node(index) != hash_pair(self.node(2 * index + 1), self.node(2 * index + 2)):
                return False
        return len(set(self.tree_indices)) == self.leaf_count


def build_tree(leaf_hashes: Sequence[bytes], *, sort_leaves: bool = True) -> MerkleTree:
    """Build the tree over `leaf_hashes` (each 32 bytes), as `StandardMerkleTree.of` does.

    `sort_leaves=False` mirrors OpenZeppelin's option of the same name and exists for
    compatibility tests; settlement always uses the sorted (default) layout.
    """
    leaf_count = len(leaf_hashes)
    if leaf_count == 0:
        raise CreditNetValueError("a Merkle tree needs at least one leaf", field="leaf_hashes")
    if any(len(leaf) != HASH_BYTES for leaf in leaf_hashes):
        raise CreditNetValueError("every leaf hash is 32 bytes", field="leaf_hashes")
    order = sorted(range(leaf_count), key=leaf_hashes.__getitem__) if sort_leaves else None
    return _layout(leaf_hashes, order)


def _layout(leaf_hashes: Sequence[bytes], order: list[int] | None) -> MerkleTree:
    """Place the leaves (sorted position `p` at index `2n - 2 - p`) and hash the rest."""
    leaf_count = len(leaf_hashes)
    node_count = 2 * leaf_count - 1
    ordered = list(leaf_hashes) if order is None else [leaf_hashes[i] for i in order]
    nodes: list[bytes] = [b""] * (leaf_count - 1) + ordered[::-1]
    positions = np.arange(node_count - 1, leaf_count - 2, -1, dtype=np.int64)
    if order is None:
        tree_indices = positions
    else:
        tree_indices = np.empty(leaf_count, dtype=np.int64)
        tree_indices[np.asarray(order, dtype=np.int64)] = positions
    _hash_inner_nodes(nodes, leaf_count)
    return MerkleTree(b"".join(nodes), leaf_count, tuple(tree_indices.tolist()))


def _hash_inner_nodes(nodes: list[bytes], leaf_count: int) -> None:
    """Fill inner nodes bottom-up in place; the hot loop of tree building, kept minimal."""
    keccak = keccak_256
    for index in range(leaf_count - 2, -1, -1):
        left = nodes[2 * index + 1]
        right = nodes[2 * index + 2]
        nodes[index] = keccak(left + right if left < right else right + left).digest()


def _leaf_depths(tree_indices: np.ndarray) -> np.ndarray:
    """Depth (proof length) of each leaf: the number of parent steps to reach the root."""
    depths = np.zeros(tree_indices.shape, dtype=np.int64)
    current = tree_indices.copy()
    while True:
        below_root = current > 0
        if not below_root.any():
            return depths
        depths += below_root
        current = np.where(below_root, (current - 1) >> 1, 0)


def _all_proofs_packed(nodes: bytes, leaf_count: int, tree_indices: Sequence[int]) -> list[bytes]:
    """See `MerkleTree.all_proofs_packed`. Leaves of equal depth are batched together."""
    node_view = np.frombuffer(nodes, dtype=np.dtype((np.void, HASH_BYTES)))
    indices = np.asarray(tree_indices, dtype=np.int64)
    depths = _leaf_depths(indices)
    packed: list[bytes] = [b""] * leaf_count
    for depth in np.unique(depths).tolist():
        if depth == 0:
            continue  # a one-leaf tree: its leaf is the root and the proof is empty
        width = depth * HASH_BYTES
        same_depth = np.flatnonzero(depths == depth)
        for start in range(0, len(same_depth), _PROOF_CHUNK_LEAVES):
            batch = same_depth[start : start + _PROOF_CHUNK_LEAVES]
            current = indices[batch]
            siblings = np.empty((len(batch), depth), dtype=np.int64)
            for level in range(depth):
                siblings[:, level] = current - 1 + 2 * (current & 1)
                current = (current - 1) >> 1
            blob = np.take(node_view, siblings).tobytes()
            starts = range(0, len(blob), width)
            for input_index, offset in zip(batch.tolist(), starts, strict=True):
                packed[input_index] = blob[offset : offset + width]
    return packed
