"""Multi-level limits as plain data: effective limits, availability, the path a use
reserves on, and the first level that would be exceeded.

A credit line is a tree: the total limit, a group limit per product group (purchase,
cash), a limit per product, and optional channel sub-limits under a product. A use
reserves its amount on every node of its path, root first; it is accepted only if
every node can take it. Paths are strings (`total/purchase/REV1/app-x`) so a node's
place in the tree is readable in responses and errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from node_api.ledger.settlement_events import LimitLevel
from node_api.lending.products import ProductType

ROOT_PATH = "total"


class ProductGroup(StrEnum):
    PURCHASE = "purchase"
    CASH = "cash"


def product_group(product_type: ProductType) -> ProductGroup:
    """Cash loans draw on the cash group; every other product on the purchase group."""
    return ProductGroup.CASH if product_type is ProductType.CASH_LOAN else ProductGroup.PURCHASE


def group_path(group: ProductGroup) -> str:
    return f"{ROOT_PATH}/{group.value}"


def product_path(group: ProductGroup, product_code: str) -> str:
    return f"{group_path(group)}/{product_code}"


def channel_path(group: ProductGroup, product_code: str, channel_id: str) -> str:
    return f"{product_path(group, product_code)}/{channel_id}"


@dataclass(slots=True)
class LimitNode:
    """One node of a line's limit tree, as locked for a decision. `used_fen` is mutable
    so a batch can apply several uses of one line in memory, in order."""

    node_id: int
    credit_line_id: int
    parent_id: int | None
    path: str
    level: LimitLevel
    product_code: str | None
    product_version: int | None
    limit_fen: int
    temp_raise_fen: int
    temp_raise_expires_on: date | None
    used_fen: int


def compute_effective_limit_fen(node: LimitNode, as_of: date) -> int:
    """The base limit plus a temporary raise that has not expired (inclusive) on `as_of`."""
    raised = node.temp_raise_expires_on is not None and as_of <= node.temp_raise_expires_on
    return node.limit_fen + (node.temp_raise_fen if raised else 0)


def compute_available_fen(node: LimitNode, as_of: date) -> int:
    """What is left to use at this node (never negative)."""
    return max(compute_effective_limit_fen(node, as_of) - node.used_fen, 0)


def compute_path_available_fen(path: Sequence[LimitNode], as_of: date) -> int:
    """What one use along `path` could still reserve: the smallest availability on it."""
    return min(compute_available_fen(node, as_of) for node in path)


def find_exceeded_node(path: Sequence[LimitNode], amount_fen: int, as_of: date) -> LimitNode | None:
    """The first node, root first, that cannot take `amount_fen`; None if all can."""
    for node in path:
        if node.used_fen + amount_fen > compute_effective_limit_fen(node, as_of):
            return node
    return None


def apply_usage(path: Sequence[LimitNode], delta_fen: int) -> None:
    """Reserve (positive) or restore (negative) `delta_fen` on every node of `path`."""
    for node in path:
        node.used_fen += delta_fen
        if node.used_fen < 0:
            raise AssertionError(f"limit usage below zero at {node.path}")


def select_use_path(
    nodes: Sequence[LimitNode], product_node: LimitNode, channel_id: str | None
) -> list[LimitNode]:
    """The nodes a use of `product_node` reserves on: its ancestors, itself, and the
    channel sub-limit for `channel_id` if there is one, root first."""
    by_id = {node.node_id: node for node in nodes}
    path = [product_node]
    parent_id = product_node.parent_id
    while parent_id is not None:
        parent = by_id[parent_id]
        path.append(parent)
        parent_id = parent.parent_id
    path.reverse()
    if channel_id is not None:
        wanted = f"{product_node.path}/{channel_id}"
        path.extend(node for node in nodes if node.path == wanted)
    return path
