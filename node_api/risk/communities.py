"""Offline community job for fraud analysts (networkx).

The online `RingIndex` only answers "how big is this applicant's component". For
investigations, analysts want every suspicious cluster with its make-up, and
Louvain communities split a giant component (one shared public Wi-Fi address can
connect thousands of honest people) into the tightly knit groups that matter.
Input is the full link history as (identity hash, attribute hash) pairs; output
is plain data sorted by size, largest first, with hashes in hex (never PII).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypedDict

import networkx as nx

IDENTITY = "identity"
ATTRIBUTE = "attribute"


class CommunityMethod(StrEnum):
    COMPONENTS = "components"
    LOUVAIN = "louvain"


class CommunityJson(TypedDict):
    identity_count: int
    attribute_count: int
    identity_hashes: list[str]
    attribute_hashes: list[str]


@dataclass(frozen=True, slots=True)
class Community:
    """One cluster: its identities and the attributes that tie them together."""

    identity_count: int
    attribute_count: int
    identity_hashes_hex: tuple[str, ...]
    attribute_hashes_hex: tuple[str, ...]

    def to_dict(self) -> CommunityJson:
        """The JSON object `creditnet risk communities` prints."""
        return {
            "identity_count": self.identity_count,
            "attribute_count": self.attribute_count,
            "identity_hashes": list(self.identity_hashes_hex),
            "attribute_hashes": list(self.attribute_hashes_hex),
        }


def build_link_graph(links: Iterable[tuple[bytes, bytes]]) -> Any:
    """Bipartite graph: identity nodes and attribute nodes, one edge per distinct link.

    Repeated links raise the edge weight, so Louvain treats a device used ten
    times by two people as a stronger tie than a single coincidence.
    """
    graph = nx.Graph()
    for identity_hash, attribute_hash in links:
        identity_node = (IDENTITY, identity_hash.hex())
        attribute_node = (ATTRIBUTE, attribute_hash.hex())
        if graph.has_edge(identity_node, attribute_node):
            graph[identity_node][attribute_node]["weight"] += 1
        else:
            graph.add_edge(identity_node, attribute_node, weight=1)
    return graph


def _to_community(nodes: Iterable[tuple[str, str]]) -> Community:
    identities = sorted(name for kind, name in nodes if kind == IDENTITY)
    attributes = sorted(name for kind, name in nodes if kind == ATTRIBUTE)
    return Community(len(identities), len(attributes), tuple(identities), tuple(attributes))


def compute_communities(
    links: Iterable[tuple[bytes, bytes]],
    *,
    method: CommunityMethod = CommunityMethod.COMPONENTS,
    identity_count_min: int = 2,
    seed: int = 0,
) -> list[Community]:
    """Clusters with at least `identity_count_min` identities, largest first.

    `seed` makes Louvain deterministic so two runs of the job give one report.
    """
    graph = build_link_graph(links)
    if method == CommunityMethod.LOUVAIN:
        groups = nx.community.louvain_communities(graph, weight="weight", seed=seed)
    else:
        groups = nx.connected_components(graph)
    communities = [_to_community(group) for group in groups]
    kept = [c for c in communities if c.identity_count >= identity_count_min]
    return sorted(
        kept, key=lambda c: (-c.identity_count, -c.attribute_count, c.identity_hashes_hex)
    )
