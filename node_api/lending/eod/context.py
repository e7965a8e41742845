"""What every end-of-day step shares: caches, batch size, an optional fault hook, and the
facts of a batch of lines read under their locks."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any, Literal

from sqlalchemy import BigInteger, Select, Text, any_, bindparam, cast, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection

from node_api.ledger.accounts import (
    ACCOUNT_RULES,
    LINE_ACCOUNT_TYPES,
    AccountIdCache,
    AccountRef,
    AccountType,
)
from node_api.ledger.schema import ledger_account_table, limit_node_table
from node_api.ledger.sql import begin_write, in_values
from node_api.lending.core.context import LendingCaches
from node_api.lending.lines import LineStatus, credit_line_table
from node_api.lending.products import ProductTerms

DEFAULT_BATCH_LINES = 2_000
MAX_WORKERS = 64
"""Most shards a date runs in (`CREDITNET_EOD_WORKERS`, `creditnet eod --workers`)."""

BoundaryHook = Callable[[str, str, int], None]
"""Called with (point, step, batch_no) at `before_commit` and `after_commit` of every
batch: tests use it to inject a crash at an exact step/batch boundary. In a sharded run
`batch_no` is the shard's earlier batches times the shard count, plus the shard, plus
one (see `shards.record_shard_batch`)."""


EOD_ACCOUNT_CACHE_ENTRIES = 200_000
"""End of day reads every active line's accounts, far more than a worker should keep
(about 100 bytes each: 1M lines hold 17M accounts). `load_facts` remembers a batch's
accounts just before the batch posts to them, so the cache only has to hold one batch
(2,000 lines: 34,000 accounts); when full it is emptied and refilled, so a worker's
memory stays bounded whatever the number of lines."""


ShardRunner = Literal["process", "thread"]
"""How the shards of a step run in parallel on PostgreSQL (see `parallel`)."""


def new_eod_caches() -> LendingCaches:
    return LendingCaches(accounts=AccountIdCache(max_entries=EOD_ACCOUNT_CACHE_ENTRIES))


@dataclass
class EodContext:
    """`workers` > 1 runs a date that opens with it in that many shards (see `shards`);
    `on_boundary` is not sent to worker processes (use `shard_runner="thread"`)."""

    caches: LendingCaches = field(default_factory=new_eod_caches)
    batch_lines: int = DEFAULT_BATCH_LINES
    on_boundary: BoundaryHook | None = None
    workers: int = 1
    shard_runner: ShardRunner = "process"


@dataclass
class LineFacts:
    """One line as a step sees it: status and dates, the terms it is billed on (those of
    its first product: the line's bill, interest and delinquency terms), and its own
    accounts' balances on their normal side."""

    credit_line_id: int
    status: LineStatus
    opened_on: date
    bill_day: int
    terms: ProductTerms
    balances: dict[AccountType, int]


def _lock_lines(conn: Connection, line_ids: Sequence[int]) -> dict[int, tuple[object, ...]]:
    """Lock every limit node and line row of the lines, in node id order (the node's lock
    order, see `node_api.ledger.sql`); return each line's header and first product.

    The locking SELECT is a materialized CTE the outer query reads to the end (so every
    row is locked, in its order), and only the product nodes come back: a line has
    three nodes or more, and the others cost a fetched row each for nothing."""
    nodes, lines = limit_node_table, credit_line_table
    locked = (
        select(
            nodes.c.id, nodes.c.credit_line_id, nodes.c.level, nodes.c.product_code,
            nodes.c.product_version, lines.c.status, lines.c.opened_on, lines.c.bill_day,
        )
        .join(lines, lines.c.id == nodes.c.credit_line_id)
        .where(in_values(conn, nodes.c.credit_line_id, line_ids))
        .order_by(nodes.c.id)
        .with_for_update(key_share=True)
        .cte("locked")
    )  # fmt: skip
    if conn.dialect.name == "postgresql":
        locked = locked.prefix_with("MATERIALIZED")
    rows = conn.execute(
        select(
            locked.c.credit_line_id, locked.c.product_code, locked.c.product_version,
            locked.c.status, locked.c.opened_on, locked.c.bill_day,
        )
        .where(locked.c.level == "product")
        .order_by(locked.c.id)
    )  # fmt: skip
    headers: dict[int, tuple[object, ...]] = {}
    for line_id, code, version, status, opened_on, bill_day in rows:
        headers.setdefault(int(line_id), (code, version, status, opened_on, bill_day))
    return headers


@lru_cache(maxsize=32)
def _balances_statement(kinds: tuple[AccountType, ...], postgresql: bool) -> Select[Any]:
    """The lines' accounts of `kinds`, by line id (the `line_ids` parameter). Built once
    per kinds and backend.

    On PostgreSQL one row per line with three arrays (types, ids, balances): half the
    server CPU of a pivot with two CASE aggregates per kind (measured: 18 ms against
    37-57 ms for 2,000 lines of 15 accounts), for about the same client CPU. The ids
    come as the array's text form (see `_read_balances`). Elsewhere one row per account.
    """
    table = ledger_account_table
    wanted = table.c.account_type.in_([kind.value for kind in kinds])
    if postgresql:
        line_ids = cast(bindparam("line_ids", type_=Text()), ARRAY(BigInteger))
        return (
            select(
                table.c.credit_line_id,
                func.array_agg(table.c.account_type),
                func.array_agg(table.c.id),
                func.array_agg(table.c.balance_fen),
            )
            .where((table.c.credit_line_id == any_(line_ids)) & wanted)
            .group_by(table.c.credit_line_id)
        )
    matches = table.c.credit_line_id.in_(bindparam("line_ids", expanding=True))
    return select(
        table.c.credit_line_id, table.c.account_type, table.c.id, table.c.balance_fen
    ).where(matches & wanted)


AccountsOfLine = tuple[int, Sequence[str], Sequence[int], Sequence[int]]
"""A line id with its accounts' types, ids and balances (in the same order)."""


def _fetch_accounts(
    conn: Connection, line_ids: Sequence[int], kinds: Sequence[AccountType]
) -> Iterable[AccountsOfLine]:
    """The lines' accounts of `kinds`, grouped by line (lines without any are absent)."""
    if conn.dialect.name == "postgresql":
        ids_text = "{" + ",".join(map(str, line_ids)) + "}"
        rows = conn.execute(_balances_statement(tuple(kinds), True), {"line_ids": ids_text})
        return [(int(row[0]), row[1], row[2], row[3]) for row in rows]
    grouped: dict[int, tuple[list[str], list[int], list[int]]] = {}
    statement = _balances_statement(tuple(kinds), False)
    for line_id, kind, account_id, balance_fen in conn.execute(
        statement, {"line_ids": list(line_ids)}
    ):
        types, ids, balances = grouped.setdefault(int(line_id), ([], [], []))
        types.append(kind)
        ids.append(account_id)
        balances.append(balance_fen)
    return [(line_id, *columns) for line_id, columns in grouped.items()]


def _read_balances(
    conn: Connection, ctx: EodContext, line_ids: Sequence[int], kinds: Sequence[AccountType]
) -> dict[int, dict[AccountType, int]]:
    """Each line's accounts of the given types (accounts of other types read as zero);
    remembers their ids."""
    found: dict[int, dict[AccountType, int]] = {}
    rules = {kind.value: (kind, ACCOUNT_RULES[kind], f":{kind.value}") for kind in kinds}
    accounts = ctx.caches.accounts
    for line_id, types, ids, amounts in _fetch_accounts(conn, line_ids, kinds):
        prefix = f"line:{line_id}"
        balances = dict.fromkeys(LINE_ACCOUNT_TYPES, 0)
        for account_type, account_id, balance_fen in zip(types, ids, amounts, strict=True):
            kind, rule, suffix = rules[account_type]
            balances[kind] = int(balance_fen) * rule.normal_sign
            # The code as `line_account_code` writes it (a line has one account per
            # type), built without its checks; the posting code then needs no query.
            ref = AccountRef(int(account_id), rule.normal_sign, rule.floor_fen)
            accounts.remember(prefix + suffix, ref)
        found[line_id] = balances
    return found


def load_facts(
    conn: Connection,
    ctx: EodContext,
    line_ids: Sequence[int],
    kinds: Sequence[AccountType] = LINE_ACCOUNT_TYPES,
) -> dict[int, LineFacts]:
    """Lock the lines and read their terms and the balances of accounts of `kinds` (the
    others read as zero: a step asks only for what it reads or posts to); ids that do
    not exist are dropped."""
    begin_write(conn)
    headers = _lock_lines(conn, line_ids)
    balances = _read_balances(conn, ctx, sorted(headers), kinds)
    facts = {}
    for line_id in sorted(headers):
        code, version, status, opened_on, bill_day = headers[line_id]
        terms = ctx.caches.products.get(conn, str(code), int(str(version)))
        facts[line_id] = LineFacts(
            line_id, LineStatus(status), opened_on, int(str(bill_day)), terms,  # type: ignore[arg-type]
            balances.get(line_id, {}),
        )  # fmt: skip
    return facts


def get_business_key(as_of: date, step: str, subject_id: int) -> str:
    """`eod:<date>:<step>:<line or bill id>`: one posting batch per subject, step and date."""
    return f"eod:{as_of.isoformat()}:{step}:{subject_id}"
