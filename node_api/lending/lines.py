"""Credit lines and their multi-level limit trees: open, lock, change limits, freeze,
unfreeze, close.

One open line per customer. Its tree: `total` → a group per product group
(`total/purchase`, `total/cash`) → a node per product (carrying the product code and
version the line is booked on) → optional channel sub-limits. Base limits nest: a node's
limit never exceeds its parent's, and a product node stays within the product's limit
range. Temporary raises add to one node until their expiry date (inclusive).

Every change to a line, and every use of it, first locks the line row (lines in id
order when several are locked at once) and then reads the tree; a line's nodes are
written only under its line's lock, so the nodes themselves are not locked first. See
`node_api.ledger.sql` for the order of all locks.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Column,
    Date,
    Index,
    SmallInteger,
    String,
    Table,
    bindparam,
    select,
    text,
)
from sqlalchemy.engine import Connection

from node_api.kernel.errors import ConflictError, CreditNetValueError, NotFoundError
from node_api.ledger.accounts import (
    AccountSpec,
    AccountType,
    ensure_accounts,
    funding_payable_spec,
    line_account_specs,
    node_account_specs,
    partner_account_spec,
)
from node_api.ledger.open_accounts import (
    PLACEHOLDER_LINE_ID,
    line_account_params,
    line_accounts_cte,
)
from node_api.ledger.schema import business_date_table, id_column, limit_node_table, metadata
from node_api.ledger.settlement_events import LimitLevel
from node_api.ledger.sql import begin_write, bulk_update, in_param
from node_api.lending.limits import (
    ROOT_PATH,
    LimitNode,
    ProductGroup,
    channel_path,
    group_path,
    product_group,
    product_path,
)
from node_api.lending.product_versions import ProductTermsCache
from node_api.lending.products import ProductTerms

CUSTOMER_REF_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")

credit_line_table = Table(
    "credit_line",
    metadata,
    id_column(),
    Column("customer_ref", String(64), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(16), nullable=False),
    Column("opened_on", Date, nullable=False),
    Column("closed_on", Date, nullable=True),
    Column("bill_day", SmallInteger, nullable=False),
    CheckConstraint("status IN ('active', 'frozen', 'closed')", name="ck_credit_line_status"),
    Index(
        "ux_credit_line_customer_open",
        "customer_ref",
        unique=True,
        postgresql_where=text("status <> 'closed'"),
        sqlite_where=text("status <> 'closed'"),
    ),
)


class LineStatus(StrEnum):
    ACTIVE = "active"
    FROZEN = "frozen"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class ProductLimit:
    """A product to book the line on, its limit and its channel sub-limits."""

    product_code: str
    version: int
    limit_fen: int
    channel_limits: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LineOpening:
    """Everything needed to open a line. `customer_ref` is an opaque id, never PII."""

    customer_ref: str
    opened_on: date
    total_limit_fen: int
    group_limits: Mapping[ProductGroup, int]
    products: Sequence[ProductLimit]
    bill_day: int | None = None


@dataclass(slots=True)
class LockedLine:
    """A line and its whole limit tree, as read (and, in a write, locked) together."""

    credit_line_id: int
    customer_ref: str
    status: LineStatus
    currency: str
    opened_on: date
    bill_day: int
    nodes: list[LimitNode]

    def node_at(self, path: str) -> LimitNode | None:
        return next((node for node in self.nodes if node.path == path), None)

    def product_nodes(self, group: ProductGroup | None = None) -> list[LimitNode]:
        prefix = ROOT_PATH + "/" + (group.value + "/" if group else "")
        return [
            node
            for node in self.nodes
            if node.level is LimitLevel.PRODUCT and node.path.startswith(prefix)
        ]


def _check_amount(value: int, field_name: str) -> None:
    if value < 0:
        raise CreditNetValueError("a limit cannot be negative", field=field_name)


def _check_opening(opening: LineOpening, terms: Sequence[ProductTerms]) -> int:
    """Validate an opening against its products; return the bill day."""
    if CUSTOMER_REF_PATTERN.fullmatch(opening.customer_ref) is None:
        raise CreditNetValueError(
            "customer_ref is an opaque id: letters, digits and _ . : - (at most 64)",
            field="customer_ref",
        )
    if not opening.products:
        raise CreditNetValueError("a line needs at least one product", field="products")
    _check_amount(opening.total_limit_fen, "total_limit_fen")
    for group, limit_fen in opening.group_limits.items():
        _check_amount(limit_fen, f"group_limits.{group.value}")
        if limit_fen > opening.total_limit_fen:
            raise CreditNetValueError(
                "a group limit exceeds the total limit", field=f"group_limits.{group.value}"
            )
    codes = [product.product_code for product in opening.products]
    if len(set(codes)) != len(codes):
        raise CreditNetValueError("a product is listed twice", field="products")
    if len({item.currency for item in terms}) != 1:
        raise CreditNetValueError("all products of a line share one currency", field="products")
    for index, (product, item) in enumerate(zip(opening.products, terms, strict=True)):
        _check_product_limit(opening, index, product, item)
    bill_days = terms[0].bill_day_options
    bill_day = opening.bill_day if opening.bill_day is not None else bill_days[0]
    if bill_day not in bill_days:
        raise CreditNetValueError(
            f"the bill day must be one of {list(bill_days)}", field="bill_day"
        )
    return bill_day


def _check_product_limit(
    opening: LineOpening, index: int, product: ProductLimit, terms: ProductTerms
) -> None:
    where = f"products.{index}"
    group = product_group(terms.product_type)
    group_limit_fen = opening.group_limits.get(group)
    if group_limit_fen is None:
        raise CreditNetValueError(
            f"a {group.value} product needs a {group.value} group limit",
            field=f"group_limits.{group.value}",
        )
    if not terms.limit_fen_min <= product.limit_fen <= terms.limit_fen_max:
        raise CreditNetValueError(
            f"the product's limit range is {terms.limit_fen_min}..{terms.limit_fen_max} fen",
            field=f"{where}.limit_fen",
        )
    if product.limit_fen > group_limit_fen:
        raise CreditNetValueError(
            "a product limit exceeds its group limit", field=f"{where}.limit_fen"
        )
    for channel_id, limit_fen in product.channel_limits.items():
        channel_field = f"{where}.channel_limits.{channel_id}"
        _check_amount(limit_fen, channel_field)
        if channel_id not in terms.eligible_channels:
            raise CreditNetValueError(
                "the channel is not eligible for this product", field=channel_field
            )
        if limit_fen > product.limit_fen:
            raise CreditNetValueError(
                "a channel limit exceeds its product limit", field=channel_field
            )


def open_credit_line(conn: Connection, opening: LineOpening, products: ProductTermsCache) -> int:
    """Open a line with its limit tree and ledger accounts; return the line id.

    Also creates (if missing) the partner accounts its products pay into: funding
    payable per funding partner, commission payable per eligible channel. On
    PostgreSQL that is one statement whatever the tree's size (`_OPEN_LINE`: the line
    row, which also checks the customer has no open line, the whole limit tree, every
    account); elsewhere one statement per row.
    """
    begin_write(conn)
    terms = [products.get(conn, item.product_code, item.version) for item in opening.products]
    bill_day = _check_opening(opening, terms)
    values = {
        "customer_ref": opening.customer_ref,
        "currency": terms[0].currency,
        "status": LineStatus.ACTIVE.value,
        "opened_on": opening.opened_on,
        "bill_day": bill_day,
    }
    rows = compute_tree_rows(opening, terms)
    line_id: int | None
    if conn.dialect.name == "postgresql":
        specs = compute_line_account_specs(PLACEHOLDER_LINE_ID, opening.customer_ref, terms)
        params = {
            **values,
            **_tree_params(rows),
            **line_account_params(specs, conn.dialect),
        }
        line_id = conn.execute(_OPEN_LINE, params).scalar_one_or_none()
    else:
        line_id = conn.execute(_insert_line_statement(), values).scalar_one_or_none()
        if line_id is not None:
            insert_tree_rows(conn, line_id, opening.customer_ref, rows)
            ensure_accounts(conn, compute_line_account_specs(line_id, opening.customer_ref, terms))
    if line_id is None:
        raise _open_line_conflict(conn, opening.customer_ref)
    return int(line_id)


@functools.cache
def _insert_line_statement() -> Any:
    """INSERT INTO credit_line ... SELECT the bound values WHERE the customer has no open
    line, RETURNING id: the check and the insert in one round trip (built once). The
    partial unique index stays the guard against a concurrent opening."""
    lines = credit_line_table
    customer_ref = bindparam("customer_ref", type_=String)
    open_line = (
        select(lines.c.id)
        .where((lines.c.customer_ref == customer_ref) & (lines.c.status != LineStatus.CLOSED.value))
        .exists()
    )
    values = select(
        customer_ref,
        bindparam("currency", type_=String),
        bindparam("status", type_=String),
        bindparam("opened_on", type_=Date),
        bindparam("bill_day", type_=SmallInteger),
    ).where(~open_line)
    columns = ["customer_ref", "currency", "status", "opened_on", "bill_day"]
    return lines.insert().from_select(columns, values).returning(lines.c.id)


def _open_line_conflict(conn: Connection, customer_ref: str) -> ConflictError:
    """The refusal of a second open line, naming the customer's open one."""
    lines = credit_line_table
    existing = conn.execute(
        select(lines.c.id).where(
            (lines.c.customer_ref == customer_ref) & (lines.c.status != LineStatus.CLOSED.value)
        )
    ).scalar_one()
    return ConflictError(
        "this customer already has an open credit line",
        field="customer_ref",
        code="customer_has_line",
        credit_line_id=int(existing),
    )


@dataclass(frozen=True, slots=True)
class TreeRow:
    """One node of a new line's tree; `parent` is the index of its parent in the list."""

    parent: int | None
    path: str
    level: LimitLevel
    limit_fen: int
    product: tuple[str, int] | None = None


def compute_tree_rows(opening: LineOpening, terms: Sequence[ProductTerms]) -> list[TreeRow]:
    """The nodes of a new line's tree in insertion (and so id) order: the root, the groups
    in name order, then each product followed by its channels in name order."""
    rows = [TreeRow(None, ROOT_PATH, LimitLevel.TOTAL, opening.total_limit_fen)]
    group_index: dict[ProductGroup, int] = {}
    for group, limit in sorted(opening.group_limits.items()):
        group_index[group] = len(rows)
        rows.append(TreeRow(0, group_path(group), LimitLevel.GROUP, limit))
    for product, item in zip(opening.products, terms, strict=True):
        group = product_group(item.product_type)
        product_index = len(rows)
        rows.append(
            TreeRow(
                group_index[group],
                product_path(group, product.product_code),
                LimitLevel.PRODUCT,
                product.limit_fen,
                (product.product_code, product.version),
            )
        )
        for channel_id, limit_fen in sorted(product.channel_limits.items()):
            path = channel_path(group, product.product_code, channel_id)
            rows.append(TreeRow(product_index, path, LimitLevel.CHANNEL, limit_fen))
    return rows


_OPEN_LINE = text(
    f"""
WITH line AS (
    INSERT INTO credit_line (customer_ref, currency, status, opened_on, bill_day)
    SELECT CAST(:customer_ref AS VARCHAR), CAST(:currency AS VARCHAR),
           CAST(:status AS VARCHAR), CAST(:opened_on AS DATE), CAST(:bill_day AS SMALLINT)
    WHERE NOT EXISTS (
        SELECT FROM credit_line
        WHERE customer_ref = CAST(:customer_ref AS VARCHAR)
          AND status <> '{LineStatus.CLOSED.value}'
    )
    RETURNING id
), v AS (
    SELECT nextval(pg_get_serial_sequence('limit_node', 'id')) AS id, v.n, v.parent_n,
           v.path, v.level, v.product_code, v.product_version, v.limit_fen
    FROM line CROSS JOIN unnest(
        CAST(:parent_n AS BIGINT[]), CAST(:path AS VARCHAR[]), CAST(:level AS VARCHAR[]),
        CAST(:product_code AS VARCHAR[]), CAST(:product_version AS INTEGER[]),
        CAST(:limit_fen AS BIGINT[])
    ) WITH ORDINALITY AS v(parent_n, path, level, product_code, product_version, limit_fen, n)
    ORDER BY v.n
), tree AS (
    INSERT INTO limit_node (id, credit_line_id, parent_id, path, level, product_code,
                            product_version, limit_fen, temp_raise_fen, used_fen, customer_id)
    SELECT v.id, line.id, p.id, v.path, v.level, v.product_code,
           v.product_version, v.limit_fen, 0, 0, CAST(:customer_ref AS VARCHAR)
    FROM line CROSS JOIN v LEFT JOIN v AS p ON p.n = v.parent_n
    ORDER BY v.n
), {line_accounts_cte("accounts")}
SELECT id FROM line
"""  # noqa: S608 (constants only; every value is a bound parameter)
)
"""PostgreSQL: a new line in one statement: its row (unless the customer has an open
line: then nothing at all, and no id drawn), its whole tree and its accounts. The
tree's ids come from the table's own sequence, drawn in list order (a volatile
expression is evaluated after the ORDER BY), so they ascend root first exactly as
row-by-row inserts would hand them out; each node's parent id is that of the row at its
parent's position. The partial unique index on open lines stays the guard against a
concurrent opening."""


def _tree_params(rows: Sequence[TreeRow]) -> dict[str, Any]:
    """`_OPEN_LINE`'s tree arrays (positions are 1-based, as WITH ORDINALITY counts)."""
    return {
        "parent_n": [None if row.parent is None else row.parent + 1 for row in rows],
        "path": [row.path for row in rows],
        "level": [row.level.value for row in rows],
        "product_code": [row.product[0] if row.product else None for row in rows],
        "product_version": [row.product[1] if row.product else None for row in rows],
        "limit_fen": [row.limit_fen for row in rows],
    }


def insert_tree_rows(
    conn: Connection, line_id: int, customer_id: str, rows: Sequence[TreeRow]
) -> None:
    """Insert a new line's tree (of customer `customer_id`) one row at a time (any
    database; the reference the set-based insert is tested against)."""
    ids: list[int] = []
    for row in rows:
        parent_id = None if row.parent is None else ids[row.parent]
        ids.append(
            _insert_node(
                conn,
                line_id,
                customer_id,
                parent_id,
                row.path,
                row.level,
                row.limit_fen,
                row.product,
            )
        )


def _insert_node(
    conn: Connection,
    line_id: int,
    customer_id: str,
    parent_id: int | None,
    path: str,
    level: LimitLevel,
    limit_fen: int,
    product: tuple[str, int] | None = None,
) -> int:
    nodes = limit_node_table
    statement = nodes.insert().values(
        credit_line_id=line_id,
        parent_id=parent_id,
        path=path,
        level=level.value,
        product_code=product[0] if product else None,
        product_version=product[1] if product else None,
        limit_fen=limit_fen,
        temp_raise_fen=0,
        used_fen=0,
        customer_id=customer_id,
    )
    return int(conn.execute(statement.returning(nodes.c.id)).scalar_one())


def compute_line_account_specs(
    line_id: int, customer_id: str, terms: Sequence[ProductTerms]
) -> list[AccountSpec]:
    """The accounts a new line (of customer `customer_id`) needs: its own, the node's, and
    its products' partners'."""
    specs = line_account_specs(line_id, customer_id) + node_account_specs()
    for item in terms:
        specs += [
            funding_payable_spec(line_id, customer_id, item.product_code, share.partner_id)
            for share in item.funding_split
        ]
        specs += [
            partner_account_spec(channel, AccountType.CHANNEL_COMMISSION_PAYABLE)
            for channel in item.eligible_channels
        ]
    return specs


_LINES_STATEMENTS: dict[tuple[str, bool], Any] = {}


def _lines_statement(dialect_name: str, *, with_date: bool = False) -> Any:
    """The tree query for the lines bound as `line_ids`; built once per shape and reused."""
    key = (dialect_name, with_date)
    statement = _LINES_STATEMENTS.get(key)
    if statement is not None:
        return statement
    nodes, lines = limit_node_table, credit_line_table
    columns: list[Any] = [
        # Named, not the whole table: a column a later release adds must not shift these.
        nodes.c.id,
        nodes.c.credit_line_id,
        nodes.c.parent_id,
        nodes.c.path,
        nodes.c.level,
        nodes.c.product_code,
        nodes.c.product_version,
        nodes.c.limit_fen,
        nodes.c.temp_raise_fen,
        nodes.c.temp_raise_expires_on,
        nodes.c.used_fen,
        lines.c.customer_ref,
        lines.c.status,
        lines.c.currency,
        lines.c.opened_on,
        lines.c.bill_day,
    ]
    if with_date:
        today = business_date_table
        columns.append(
            select(today.c.as_of).where(today.c.id == 1).scalar_subquery().label("business_date")
        )
    statement = (
        select(*columns)
        .join(lines, lines.c.id == nodes.c.credit_line_id)
        .where(in_param(dialect_name, nodes.c.credit_line_id, "line_ids"))
        # The same filter on the line side, so the planner looks lines up by key instead
        # of hashing the whole table.
        .where(in_param(dialect_name, lines.c.id, "line_ids"))
        .order_by(nodes.c.id)
    )
    return _LINES_STATEMENTS.setdefault(key, statement)


_LOCK_LINES = (
    select(credit_line_table.c.id)
    .where(in_param("postgresql", credit_line_table.c.id, "line_ids"))
    .order_by(credit_line_table.c.id)
    .with_for_update(key_share=True)
)


def _lock_line_rows(conn: Connection, line_ids: list[int]) -> None:
    """Lock the lines' rows in id order (PostgreSQL; on SQLite `begin_write` already holds
    the database's write lock). The lines' trees must be read by a later statement: under
    READ COMMITTED a statement that waited for a lock sees the locked rows as committed
    meanwhile, but the other rows it joins as they were when it began."""
    if conn.dialect.name == "postgresql":
        conn.execute(_LOCK_LINES, {"line_ids": line_ids})


_STATUSES = {status.value: status for status in LineStatus}
_LEVELS = {level.value: level for level in LimitLevel}
"""The members by stored value: a dict lookup, where calling the enum costs ~0.5 µs and
`_collect` makes four a purchase."""


def _collect(rows: Any) -> dict[int, LockedLine]:
    """Lines from rows of `_lines_statement` (read by position: the hot path reads
    thousands of these a second)."""
    found: dict[int, LockedLine] = {}
    for row in rows:
        (
            node_id, line_id, parent_id, path, level, code, version, limit_fen, raise_fen,
            raise_expires_on, used_fen, customer_ref, status, currency, opened_on, bill_day,
        ) = row[:16]  # fmt: skip
        line = found.get(line_id)
        if line is None:
            line = LockedLine(
                line_id, customer_ref, _STATUSES[status], currency, opened_on, bill_day, []
            )
            found[line_id] = line
        line.nodes.append(
            LimitNode(
                node_id,
                line_id,
                parent_id,
                path,
                _LEVELS[level],
                code,
                version,
                limit_fen,
                raise_fen,
                raise_expires_on,
                used_fen,
            )
        )
    return found


def fetch_lines(conn: Connection, line_ids: Sequence[int], *, lock: bool) -> dict[int, LockedLine]:
    """Lines with their trees by id (missing ids are absent). With `lock`, the line rows
    are locked first, in id order (FOR NO KEY UPDATE), which gives this transaction the
    lines' nodes too (`node_api.ledger.sql`)."""
    if not line_ids:
        return {}
    ids = sorted(set(line_ids))
    if lock:
        _lock_line_rows(conn, ids)
    statement = _lines_statement(conn.dialect.name)
    return _collect(conn.execute(statement, {"line_ids": ids}))


def lock_lines_with_date(
    conn: Connection, line_ids: Sequence[int]
) -> tuple[dict[int, LockedLine], date | None]:
    """`fetch_lines(lock=True)` and the business date, the read in one round trip (the
    hot path on SQLite; PostgreSQL's is `creditnet_use_batch_open`)."""
    if not line_ids:
        return {}, None
    ids = sorted(set(line_ids))
    _lock_line_rows(conn, ids)
    statement = _lines_statement(conn.dialect.name, with_date=True)
    rows = conn.execute(statement, {"line_ids": ids}).all()
    business_date = rows[0].business_date if rows else None
    return _collect(rows), business_date


def lines_from_json(nodes: Sequence[Sequence[Any]]) -> dict[int, LockedLine]:
    """Lines from the node rows a database function answered as JSON (PostgreSQL's hot
    path, `creditnet_use_batch_open`): the columns of `_lines_statement`, dates as ISO
    text."""
    rows = []
    for node in nodes:
        row = list(node)
        if row[9] is not None:
            row[9] = date.fromisoformat(row[9])  # temp_raise_expires_on
        row[14] = date.fromisoformat(row[14])  # the line's opened_on
        rows.append(row)
    return _collect(rows)


def lock_line(conn: Connection, line_id: int) -> LockedLine:
    """Lock one line's tree for a change (after `begin_write`); NotFoundError if absent."""
    begin_write(conn)
    line = fetch_lines(conn, [line_id], lock=True).get(line_id)
    if line is None:
        raise NotFoundError(f"credit line {line_id} does not exist", field="credit_line_id")
    return line


def fetch_line(conn: Connection, line_id: int) -> LockedLine:
    """One line's tree for reading; NotFoundError if absent."""
    line = fetch_lines(conn, [line_id], lock=False).get(line_id)
    if line is None:
        raise NotFoundError(f"credit line {line_id} does not exist", field="credit_line_id")
    return line


def write_usage(conn: Connection, nodes: Sequence[LimitNode]) -> None:
    """Store `used_fen` of the given nodes, which this transaction has locked."""
    unique = {node.node_id: node for node in nodes}
    rows = [{"id": i, "used_fen": unique[i].used_fen} for i in sorted(unique)]
    bulk_update(conn, limit_node_table, rows, keys=("id",))
