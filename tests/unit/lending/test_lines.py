"""Multi-level limits as plain data: effective limits, raises, paths, the binding level."""

from __future__ import annotations

from datetime import date

import pytest

from node_api.ledger.settlement_events import LimitLevel
from node_api.lending.limits import (
    LimitNode,
    apply_usage,
    compute_available_fen,
    compute_effective_limit_fen,
    compute_path_available_fen,
    find_exceeded_node,
    select_use_path,
)

DAY = date(2025, 3, 10)


def _node(
    node_id: int, parent: int | None, path: str, level: LimitLevel, limit: int, used: int = 0
) -> LimitNode:
    return LimitNode(node_id, 1, parent, path, level, None, None, limit, 0, None, used)


def _tree() -> list[LimitNode]:
    return [
        _node(1, None, "total", LimitLevel.TOTAL, 10_000, 6_000),
        _node(2, 1, "total/purchase", LimitLevel.GROUP, 8_000, 5_000),
        _node(3, 2, "total/purchase/REV1", LimitLevel.PRODUCT, 8_000, 5_000),
        _node(4, 3, "total/purchase/REV1/app", LimitLevel.CHANNEL, 2_000, 1_500),
        _node(5, 1, "total/cash", LimitLevel.GROUP, 3_000, 1_000),
    ]


def test_temporary_raise_counts_through_its_expiry_day_only() -> None:
    node = _node(1, None, "total", LimitLevel.TOTAL, 1_000)
    node.temp_raise_fen = 500
    node.temp_raise_expires_on = DAY
    assert compute_effective_limit_fen(node, DAY) == 1_500
    assert compute_effective_limit_fen(node, date(2025, 3, 11)) == 1_000


def test_available_is_never_negative_when_usage_exceeds_an_expired_raise() -> None:
    node = _node(1, None, "total", LimitLevel.TOTAL, 1_000, used=1_400)
    assert compute_available_fen(node, DAY) == 0


def test_use_path_runs_root_first_and_includes_the_channel_sub_limit() -> None:
    nodes = _tree()
    path = select_use_path(nodes, nodes[2], "app")
    assert [n.node_id for n in path] == [1, 2, 3, 4]
    assert [n.node_id for n in select_use_path(nodes, nodes[2], "pos")] == [1, 2, 3]


def test_binding_level_is_the_first_that_cannot_take_the_amount() -> None:
    nodes = _tree()
    app_path = select_use_path(nodes, nodes[2], "app")
    assert find_exceeded_node(app_path, 500, DAY) is None
    exceeded = find_exceeded_node(app_path, 501, DAY)
    assert exceeded is not None and exceeded.path == "total/purchase/REV1/app"
    pos_path = select_use_path(nodes, nodes[2], "pos")
    assert find_exceeded_node(pos_path, 3_000, DAY) is None
    exceeded = find_exceeded_node(pos_path, 3_001, DAY)
    assert exceeded is not None and exceeded.path == "total/purchase"
    assert compute_path_available_fen(app_path, DAY) == 500


def test_usage_moves_on_every_level_and_never_below_zero() -> None:
    nodes = _tree()
    path = select_use_path(nodes, nodes[2], "app")
    apply_usage(path, 500)
    assert [n.used_fen for n in path] == [6_500, 5_500, 5_500, 2_000]
    apply_usage(path, -2_000)
    assert [n.used_fen for n in path] == [4_500, 3_500, 3_500, 0]
    with pytest.raises(AssertionError):
        apply_usage(path, -1)
