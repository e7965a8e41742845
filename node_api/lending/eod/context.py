"""What every end-of-day step shares: caches, batch size, an optional fault hook, and the
facts of a batch of lines read under their locks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any, Literal

from sqlalchemy import BigInteger, Select, any_, bindparam, case, func, select
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


EOD_ACCOUNT_CACHE_ENTRIES = 4_000_000
"""End of day reads every active line's accounts: far more than a worker caches."""


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
    order, see `node_api.ledger.sql`); return each line's header and first product."""
    nodes, lines = limit_node_table, credit_line_table
    rows = conn.execute(
        select(
            nodes.c.credit_line_id, nodes.c.level, nodes.c.product_code, nodes.c.product_version,
            lines.c.status, lines.c.opened_on, lines.c.bill_day,
        )
        .join(lines, lines.c.id == nodes.c.credit_line_id)
        .where(in_values(conn, nodes.c.credit_line_id, line_ids))
        .order_by(nodes.c.id)
        .with_for_update(key_share=True)
    )  # fmt: skip
    headers: dict[int, tuple[object, ...]] = {}
    for line_id, level, code, version, status, opened_on, bill_day in rows:
        if level == "product" and int(line_id) not in headers:
            headers[int(line_id)] = (code, version, status, opened_on, bill_day)
    return headers


@lru_cache(maxsize=32)
def _balances_statement(kinds: tuple[AccountType, ...], postgresql: bool) -> Select[Any]:
    """One pivoted row per line: for each kind, its balance and account id. Built once
    per kinds and backend; the line ids are the `line_ids` parameter."""
    table = ledger_account_table
    columns: list[Any] = []
    for kind in kinds:
        mine = table.c.account_type == kind.value
        columns.append(func.sum(case((mine, table.c.balance_fen), else_=0)))
        columns.append(func.max(case((mine, table.c.id), else_=None)))
    if postgresql:
        line_ids = bindparam("line_ids", type_=ARRAY(BigInteger))
        matches = table.c.credit_line_id == any_(line_ids)
    else:
        matches = table.c.credit_line_id.in_(bindparam("line_ids", expanding=True))
    return (
        select(table.c.credit_line_id, *columns)
        .where(matches & table.c.account_type.in_([kind.value for kind in kinds]))
        .group_by(table.c.credit_line_id)
    )


def _read_balances(
    conn: Connection, ctx: EodContext, line_ids: Sequence[int], kinds: Sequence[AccountType]
) -> dict[int, dict[AccountType, int]]:
    """Each line's accounts of the given types, one pivoted row per line (accounts of
    other types read as zero); remembers their ids."""
    statement = _balances_statement(tuple(kinds), conn.dialect.name == "postgresql")
    rows = conn.execute(statement, {"line_ids": list(line_ids)})
    found: dict[int, dict[AccountType, int]] = {}
    rules = [(kind, ACCOUNT_RULES[kind], f":{kind.value}") for kind in kinds]
    accounts = ctx.caches.accounts
    for row in rows:
        line_id = int(row[0])
        prefix = f"line:{line_id}"
        balances = dict.fromkeys(LINE_ACCOUNT_TYPES, 0)
        for index, (kind, rule, suffix) in enumerate(rules):
            balances[kind] = int(row[1 + 2 * index]) * rule.normal_sign
            account_id = row[2 + 2 * index]
            if account_id is not None:
                # The code as `line_account_code` writes it, built without its checks; the
                # posting code then needs no query to find these accounts.
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
