"""Changes to a line after opening: base limits, channel sub-limits, temporary raises,
freeze, unfreeze and close.

Every change locks the line's tree first. A base limit may not drop below what is in use
(freeze the line to stop new use instead) nor break the nesting rule (a node never above
its parent, a product node within its product's limit range). A channel sub-limit added
later starts with the open principal already drawn through that channel.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from node_api.kernel.errors import ConflictError, CreditNetValueError, NotFoundError
from node_api.ledger.balances import fetch_line_balances
from node_api.ledger.schema import limit_node_table
from node_api.ledger.settlement_events import LimitLevel
from node_api.lending.limits import LimitNode
from node_api.lending.lines import (
    LineStatus,
    LockedLine,
    credit_line_table,
    lock_line,
)
from node_api.lending.product_versions import ProductTermsCache
from node_api.lending.purchase_tables import purchase_table


class LineAction(StrEnum):
    FREEZE = "freeze"
    UNFREEZE = "unfreeze"
    CLOSE = "close"


def _check_nesting(
    line: LockedLine, node: LimitNode, limit_fen: int, conn: Connection, products: ProductTermsCache
) -> None:
    by_id = {item.node_id: item for item in line.nodes}
    if node.parent_id is not None and limit_fen > by_id[node.parent_id].limit_fen:
        raise CreditNetValueError("the limit exceeds its parent's limit", field="limit_fen")
    for child in line.nodes:
        if child.parent_id == node.node_id and child.limit_fen > limit_fen:
            raise CreditNetValueError(
                f"the limit is below the limit of {child.path}", field="limit_fen"
            )
    if node.level is LimitLevel.PRODUCT and node.product_code and node.product_version:
        terms = products.get(conn, node.product_code, node.product_version)
        if not terms.limit_fen_min <= limit_fen <= terms.limit_fen_max:
            raise CreditNetValueError(
                f"the product's limit range is {terms.limit_fen_min}..{terms.limit_fen_max} fen",
                field="limit_fen",
            )


def _existing_node(line: LockedLine, path: str) -> LimitNode:
    node = line.node_at(path)
    if node is None:
        raise NotFoundError(f"the line has no limit at {path}", field="path")
    return node


def set_node_limit(
    conn: Connection, line_id: int, path: str, limit_fen: int, products: ProductTermsCache
) -> LockedLine:
    """Set the base limit at `path`; a new channel path under a product creates a sub-limit."""
    if limit_fen < 0:
        raise CreditNetValueError("a limit cannot be negative", field="limit_fen")
    line = lock_line(conn, line_id)
    _check_open(line)
    node = line.node_at(path)
    if node is None:
        node = _add_channel_node(conn, line, path, products)
    _check_nesting(line, node, limit_fen, conn, products)
    if limit_fen < node.used_fen:
        raise ConflictError(
            f"{node.used_fen} fen is in use at {path}; freeze the line to stop new use",
            field="limit_fen",
            code="limit_below_usage",
        )
    table = limit_node_table
    conn.execute(update(table).where(table.c.id == node.node_id).values(limit_fen=limit_fen))
    node.limit_fen = limit_fen
    return line


def _add_channel_node(
    conn: Connection, line: LockedLine, path: str, products: ProductTermsCache
) -> LimitNode:
    parent_path, _, channel_id = path.rpartition("/")
    parent = line.node_at(parent_path)
    if parent is None or parent.level is not LimitLevel.PRODUCT or not channel_id:
        raise NotFoundError(
            f"the line has no limit at {path}; only channel sub-limits can be added",
            field="path",
        )
    assert parent.product_code is not None and parent.product_version is not None
    terms = products.get(conn, parent.product_code, parent.product_version)
    if channel_id not in terms.eligible_channels:
        raise CreditNetValueError("the channel is not eligible for this product", field="path")
    purchases = purchase_table
    used_fen = int(
        conn.execute(
            select(func.coalesce(func.sum(purchases.c.principal_open_fen), 0)).where(
                (purchases.c.product_node_id == parent.node_id)
                & (purchases.c.channel_id == channel_id)
            )
        ).scalar_one()
    )
    nodes = limit_node_table
    node_id = conn.execute(
        nodes.insert()
        .values(
            credit_line_id=line.credit_line_id,
            parent_id=parent.node_id,
            path=path,
            level=LimitLevel.CHANNEL.value,
            limit_fen=parent.limit_fen,
            temp_raise_fen=0,
            used_fen=used_fen,
            customer_id=line.customer_ref,
        )
        .returning(nodes.c.id)
    ).scalar_one()
    node = LimitNode(
        int(node_id),
        line.credit_line_id,
        parent.node_id,
        path,
        LimitLevel.CHANNEL,
        None,
        None,
        parent.limit_fen,
        0,
        None,
        used_fen,
    )
    line.nodes.append(node)
    return node


def set_temporary_raise(
    conn: Connection,
    line_id: int,
    path: str,
    raise_fen: int,
    expires_on: date,
    as_of: date,
    products: ProductTermsCache,
) -> LockedLine:
    """Raise the limit at `path` by `raise_fen` through `expires_on` (0 cancels a raise)."""
    if raise_fen < 0:
        raise CreditNetValueError("a raise cannot be negative", field="raise_fen")
    if expires_on < as_of:
        raise CreditNetValueError("the raise would already be expired", field="expires_on")
    line = lock_line(conn, line_id)
    _check_open(line)
    node = _existing_node(line, path)
    if node.level is LimitLevel.PRODUCT and node.product_code and node.product_version:
        terms = products.get(conn, node.product_code, node.product_version)
        if node.limit_fen + raise_fen > terms.limit_fen_max:
            raise CreditNetValueError(
                f"the raised limit exceeds the product maximum of {terms.limit_fen_max} fen",
                field="raise_fen",
            )
    table = limit_node_table
    conn.execute(
        update(table)
        .where(table.c.id == node.node_id)
        .values(temp_raise_fen=raise_fen, temp_raise_expires_on=expires_on if raise_fen else None)
    )
    node.temp_raise_fen = raise_fen
    node.temp_raise_expires_on = expires_on if raise_fen else None
    return line


def _check_open(line: LockedLine) -> None:
    if line.status is LineStatus.CLOSED:
        raise ConflictError("the credit line is closed", field="credit_line_id", code="line_closed")


def change_line_status(
    conn: Connection, line_id: int, action: LineAction, as_of: date
) -> LockedLine:
    """Freeze (no new use), unfreeze, or close (only when nothing is owed either way)."""
    line = lock_line(conn, line_id)
    _check_open(line)
    target = {
        LineAction.FREEZE: LineStatus.FROZEN,
        LineAction.UNFREEZE: LineStatus.ACTIVE,
        LineAction.CLOSE: LineStatus.CLOSED,
    }[action]
    if action is LineAction.CLOSE:
        owed = {kind.value: fen for kind, fen in fetch_line_balances(conn, line_id).items() if fen}
        if owed or any(node.used_fen for node in line.nodes):
            raise ConflictError(
                "a line with a balance cannot be closed",
                field="credit_line_id",
                code="line_has_balance",
                balances_fen=owed,
            )
    lines = credit_line_table
    conn.execute(
        update(lines)
        .where(lines.c.id == line_id)
        .values(status=target.value, closed_on=as_of if target is LineStatus.CLOSED else None)
    )
    line.status = target
    return line
