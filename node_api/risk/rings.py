"""Online fraud-ring index: union-find over identity and shared-attribute links.

Each application links its identity hash to the hashes of the attributes it used
(phone, device, ...). Two identities that ever shared an attribute, directly or
through a chain of others, end up in one component; a large component is a
fraud-ring signal. Union by size and path compression keep every operation
near-constant, so the index can be updated inside the application request.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

Node = tuple[bool, bytes]
"""(is_identity, hash): identities and attributes live in separate namespaces."""


class RingIndex:
    """Union-find whose components count the distinct identities they contain."""

    def __init__(self) -> None:
        self._index: dict[Node, int] = {}
        self._parent: list[int] = []
        self._size: list[int] = []
        self._identities: list[int] = []
        self._links: list[tuple[bytes, bytes]] = []

    def __len__(self) -> int:
        """Number of nodes (identities plus attributes)."""
        return len(self._parent)

    def _find(self, node_id: int) -> int:
        root = node_id
        while self._parent[root] != root:
            root = self._parent[root]
        while self._parent[node_id] != root:
            self._parent[node_id], node_id = root, self._parent[node_id]
        return root

    def _node_id(self, node: Node) -> int:
        node_id = self._index.get(node)
        if node_id is None:
            node_id = len(self._parent)
            self._index[node] = node_id
            self._parent.append(node_id)
            self._size.append(1)
            self._identities.append(1 if node[0] else 0)
        return node_id

    def _union(self, left: int, right: int) -> int:
        left_root, right_root = self._find(left), self._find(right)
        if left_root == right_root:
            return left_root
        if self._size[left_root] < self._size[right_root]:
            left_root, right_root = right_root, left_root
        self._parent[right_root] = left_root
        self._size[left_root] += self._size[right_root]
        self._identities[left_root] += self._identities[right_root]
        return left_root

    def add_application(self, identity_hash: bytes, attribute_hashes: Iterable[bytes]) -> int:
        """Link an identity to its attributes; return its component's identity count."""
        root = self._node_id((True, identity_hash))
        for attribute_hash in attribute_hashes:
            attribute_id = self._node_id((False, attribute_hash))
            if self._find(attribute_id) != self._find(root):
                self._links.append((identity_hash, attribute_hash))
            root = self._union(root, attribute_id)
        return self._identities[self._find(root)]

    def component_size(self, identity_hash: bytes) -> int:
        """Identity count of the identity's component (0 if never seen)."""
        node_id = self._index.get((True, identity_hash))
        return 0 if node_id is None else self._identities[self._find(node_id)]

    def peek_component_size(self, identity_hash: bytes, attribute_hashes: Iterable[bytes]) -> int:
        """The identity count `add_application` would return, without changing the index."""
        roots: set[int] = set()
        identity_id = self._index.get((True, identity_hash))
        if identity_id is not None:
            roots.add(self._find(identity_id))
        for attribute_hash in attribute_hashes:
            attribute_id = self._index.get((False, attribute_hash))
            if attribute_id is not None:
                roots.add(self._find(attribute_id))
        existing = sum(self._identities[root] for root in roots)
        return existing + (1 if identity_id is None else 0)

    def links(self) -> Iterator[tuple[bytes, bytes]]:
        """The (identity hash, attribute hash) links that merged components.

        A spanning forest of the link graph: enough to rebuild the same components,
        not every link ever seen (the offline community job reads the full history).
        """
        return iter(self._links)

    @classmethod
    def from_links(cls, links: Iterable[tuple[bytes, bytes]]) -> RingIndex:
        """Rebuild an index from stored links, e.g. at node start."""
        index = cls()
        for identity_hash, attribute_hash in links:
            index.add_application(identity_hash, (attribute_hash,))
        return index
