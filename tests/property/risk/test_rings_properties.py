"""The online ring index agrees with networkx connected components on any link history."""

from __future__ import annotations

import networkx as nx
from hypothesis import given
from hypothesis import strategies as st

from node_api.risk.rings import RingIndex

applications = st.lists(
    st.tuples(st.integers(0, 15), st.lists(st.integers(0, 15), max_size=3)), max_size=40
)


def _identity(n: int) -> bytes:
    return b"i" + bytes([n])


def _attribute(n: int) -> bytes:
    return b"a" + bytes([n])


@given(applications)
def test_component_sizes_match_networkx_connected_components(
    history: list[tuple[int, list[int]]],
) -> None:
    index = RingIndex()
    graph = nx.Graph()
    for identity, attributes in history:
        attribute_hashes = [_attribute(a) for a in attributes]
        predicted = index.peek_component_size(_identity(identity), tuple(attribute_hashes))
        assert index.add_application(_identity(identity), attribute_hashes) == predicted
        graph.add_node(("i", identity))
        graph.add_edges_from((("i", identity), ("a", a)) for a in attributes)
    for component in nx.connected_components(graph):
        identities = [name for kind, name in component if kind == "i"]
        for identity in identities:
            assert index.component_size(_identity(identity)) == len(identities)
