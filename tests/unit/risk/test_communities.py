"""Offline community job: components and Louvain clusters over the link history."""

from __future__ import annotations

from node_api.risk.communities import CommunityMethod, compute_communities
from tests.unit.risk.fraud_helpers import h


def _clique(prefix: str, members: int) -> list[tuple[bytes, bytes]]:
    """Every member uses every one of the group's three devices."""
    return [
        (h(f"{prefix}-id-{m}"), h(f"{prefix}-dev-{d}")) for m in range(members) for d in range(3)
    ]


def test_components_report_every_cluster_largest_first() -> None:
    links = [*_clique("a", 6), *_clique("b", 3), (h("loner"), h("loner-dev"))]
    communities = compute_communities(links)
    assert [c.identity_count for c in communities] == [6, 3]
    assert [c.attribute_count for c in communities] == [3, 3]
    assert h("a-id-0").hex() in communities[0].identity_hashes_hex


def test_louvain_splits_clusters_joined_by_one_shared_attribute() -> None:
    bridge = h("public-wifi")
    links = [*_clique("a", 6), *_clique("b", 6), (h("a-id-0"), bridge), (h("b-id-0"), bridge)]
    assert [c.identity_count for c in compute_communities(links)] == [12]
    louvain = compute_communities(links, method=CommunityMethod.LOUVAIN)
    assert [c.identity_count for c in louvain] == [6, 6]
    assert louvain == compute_communities(links, method=CommunityMethod.LOUVAIN)


def test_identity_minimum_filters_small_clusters() -> None:
    links = [*_clique("a", 4), *_clique("b", 2)]
    assert [c.identity_count for c in compute_communities(links, identity_count_min=3)] == [4]


def test_community_dict_holds_hex_hashes_only() -> None:
    community = compute_communities(_clique("a", 2))[0].to_dict()
    assert community["identity_count"] == 2
    assert all(
        isinstance(value, str) and len(value) == 64 for value in community["identity_hashes"]
    )
