"""Online ring index: union-find component sizes count identities, not attributes."""

from __future__ import annotations

from node_api.risk.rings import RingIndex
from tests.unit.risk.fraud_helpers import h


def test_identities_sharing_an_attribute_join_one_component() -> None:
    index = RingIndex()
    assert index.add_application(h("a"), [h("dev-1")]) == 1
    assert index.add_application(h("b"), [h("dev-1")]) == 2
    assert index.add_application(h("c"), [h("dev-2")]) == 1
    assert index.add_application(h("c"), [h("dev-1")]) == 3
    assert index.component_size(h("a")) == 3


def test_attributes_alone_do_not_count_as_identities() -> None:
    index = RingIndex()
    assert index.add_application(h("a"), [h(f"attr-{n}") for n in range(10)]) == 1
    assert len(index) == 11


def test_same_hash_as_identity_and_attribute_are_different_nodes() -> None:
    index = RingIndex()
    index.add_application(h("x"), [h("y")])
    assert index.add_application(h("y"), [h("x")]) == 1


def test_peek_predicts_add_without_changing_the_index() -> None:
    index = RingIndex()
    index.add_application(h("a"), [h("dev-1")])
    index.add_application(h("b"), [h("dev-2")])
    assert index.peek_component_size(h("c"), (h("dev-1"), h("dev-2"))) == 3
    assert index.component_size(h("a")) == 1
    assert index.peek_component_size(h("a"), (h("dev-1"),)) == 1
    assert index.add_application(h("c"), (h("dev-1"), h("dev-2"))) == 3


def test_unknown_identity_has_no_component() -> None:
    assert RingIndex().component_size(h("nobody")) == 0


def test_rebuild_from_links_gives_the_same_components() -> None:
    index = RingIndex()
    for n in range(20):
        index.add_application(h(f"id-{n}"), [h(f"dev-{n % 7}"), h(f"phone-{n % 5}")])
    rebuilt = RingIndex.from_links(index.links())
    for n in range(20):
        assert rebuilt.component_size(h(f"id-{n}")) == index.component_size(h(f"id-{n}"))
