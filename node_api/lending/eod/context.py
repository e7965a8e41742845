"""What every end-of-day step shares: caches, batch size, an optional fault hook, and the
facts of a batch of lines read under their locks."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any, Literal

from sqlalchemy import BigInteger, ColumnElement, Select, Text, any_, bindparam, cast, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection
from sqlalchemy.sql.sqltypes import NullType

from node_api.ledger.accounts import (
    ACCOUNT_RULES,
    LINE_ACCOUNT_TYPES,
    AccountIdCache,
    AccountType,
)
from node_api.ledger.schema import ledger_account_table, limit_node_table
from node_api.ledger.sql import begin_write
from node_api.lending.core.context import LendingCaches, LendingPolicy
from node_api.lending.lines import LineStatus, credit_line_table
from node_api.lending.products import ProductTerms

DEFAULT_BATCH_LINES = 2_000
MAX_WORKERS = 64
"""Most shards a date runs in (`CREDITNET_EOD_WORKERS`, `CREDITNET_EOD_SHARDS`,
`creditnet eod --workers`)."""
DEFAULT_CLAIM_TTL_S = 60.0
"""A shard's claim not renewed by a committed batch for this long may be taken over
(`claims`, `CREDITNET_EOD_CLAIM_TTL_S`): above the longest batch and candidate listing."""
DEFAULT_CLAIM_POLL_S = 0.5
"""How often a coordinator waiting for shards other nodes run looks at them again."""

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


def new_eod_caches(policy: LendingPolicy | None = None) -> LendingCaches:
    """End of day's caches; `policy` is the node's (its back-dating window tells the
    funding step how far back a day's uses may be dated), the defaults' without one."""
    return LendingCaches(
        accounts=AccountIdCache(max_entries=EOD_ACCOUNT_CACHE_ENTRIES),
        policy=policy or LendingPolicy(),
    )


@dataclass
class EodContext:
    """`workers` > 1 runs a date that opens with it in `shards` shards (see `shards`; 0:
    as many as `workers`), that many at once on this node; `on_boundary` is not sent to
    worker processes (use `shard_runner="thread"`). `node` names this node in the shards'
    claims (`claims`; empty: the host's name), `claim_ttl_s` how long a claim lasts
    unless a batch renews it, `claim_poll_s` how often the coordinator looks again at
    shards other nodes run."""

    caches: LendingCaches = field(default_factory=new_eod_caches)
    batch_lines: int = DEFAULT_BATCH_LINES
    on_boundary: BoundaryHook | None = None
    workers: int = 1
    shard_runner: ShardRunner = "process"
    shards: int = 0
    node: str = ""
    claim_ttl_s: float = DEFAULT_CLAIM_TTL_S
    claim_poll_s: float = DEFAULT_CLAIM_POLL_S

    @property
    def shard_count(self) -> int:
        """The shards a date opening now runs in (1: not sharded)."""
        return self.shards if self.shards > 0 else self.workers

    @property
    def coordinator_holder(self) -> str:
        """The claim holder of the coordinator's workers (`claims`)."""
        return f"{self.node or socket.gethostname()}/coordinator"

    @property
    def helper_holder(self) -> str:
        """The claim holder of this node's helper (`helper`)."""
        return f"{self.node or socket.gethostname()}/helper"


@dataclass
class LineFacts:
    """One line as a step sees it: its customer (`credit_line.customer_ref`, which every
    row the steps write for the line carries), status and dates, the terms it is billed
    on (those of its first product: the line's bill, interest and delinquency terms), and
    its own accounts' balances on their normal side."""

    credit_line_id: int
    customer_id: str
    status: LineStatus
    opened_on: date
    bill_day: int
    terms: ProductTerms
    balances: dict[AccountType, int]


def _in_line_ids(column: ColumnElement[int], postgresql: bool) -> ColumnElement[bool]:
    """`column IN :line_ids`, for statements built once: on PostgreSQL `= ANY` of the ids
    sent as the text of one array (see `_line_ids_value`), elsewhere an expanding IN."""
    if postgresql:
        return column == any_(cast(bindparam("line_ids", type_=Text()), ARRAY(BigInteger)))
    return column.in_(bindparam("line_ids", expanding=True))


def _line_ids_value(postgresql: bool, line_ids: Sequence[int]) -> str | list[int]:
    """The `line_ids` parameter of `_in_line_ids`: PostgreSQL's text form of the array
    (psycopg adapts a list of ints at about 1.3 us an element), elsewhere the list."""
    if postgresql:
        return "{" + ",".join(map(str, line_ids)) + "}"
    return list(line_ids)


@lru_cache(maxsize=2)
def _lock_statement(postgresql: bool) -> Select[Any]:
    """The lines' locking query (see `_lock_lines`), built once per backend."""
    nodes, lines = limit_node_table, credit_line_table
    locked = (
        select(
            nodes.c.id, nodes.c.credit_line_id, nodes.c.level, nodes.c.product_code,
            nodes.c.product_version, lines.c.status, lines.c.opened_on, lines.c.bill_day,
            lines.c.customer_ref,
        )
        .join(lines, lines.c.id == nodes.c.credit_line_id)
        .where(
            _in_line_ids(nodes.c.credit_line_id, postgresql)
            & _in_line_ids(lines.c.id, postgresql)
        )
        .order_by(lines.c.id, nodes.c.id)
        .with_for_update(key_share=True, of=lines)
        .cte("locked")
    )  # fmt: skip
    if postgresql:
        locked = locked.prefix_with("MATERIALIZED")
    return (
        select(
            locked.c.credit_line_id, locked.c.product_code, locked.c.product_version,
            locked.c.status, locked.c.opened_on, locked.c.bill_day, locked.c.customer_ref,
        )
        .where(locked.c.level == "product")
        .order_by(locked.c.id)
    )  # fmt: skip


def _lock_lines(conn: Connection, line_ids: Sequence[int]) -> dict[int, tuple[object, ...]]:
    """Lock the lines' rows in id order (the lock order, see `node_api.ledger.sql`; the
    nodes need no lock of their own, and what is read of them, the product, never
    changes); return each line's header (with its customer) and first product.

    The locking SELECT is a materialized CTE the outer query reads to the end (so every
    row is locked, in its order), and only the product nodes come back: a line has
    three nodes or more, and the others cost a fetched row each for nothing. Both tables
    are filtered by the line ids: with the filter on the nodes alone, PostgreSQL hashes
    every `credit_line` row, once per batch (measured at 1M lines: 160 to 300 ms of a 300
    to 440 ms statement, for 2,000 lines; 25 to 30 ms with both filters)."""
    postgresql = conn.dialect.name == "postgresql"
    rows = conn.execute(
        _lock_statement(postgresql), {"line_ids": _line_ids_value(postgresql, line_ids)}
    )
    headers: dict[int, tuple[object, ...]] = {}
    for line_id, code, version, status, opened_on, bill_day, customer_ref in rows:
        headers.setdefault(int(line_id), (code, version, status, opened_on, bill_day, customer_ref))
    return headers


@lru_cache(maxsize=32)
def _balances_statement(kinds: tuple[AccountType, ...], postgresql: bool) -> Select[Any]:
    """The lines' accounts of `kinds`, by line id (the `line_ids` parameter). Built once
    per kinds and backend.

    On PostgreSQL one row per line with three arrays (types, ids, balances): half the
    server CPU of a pivot with two CASE aggregates per kind (measured: 18 ms against
    37-57 ms for 2,000 lines of 15 accounts), for about the same client CPU. The arrays
    are typed NullType, so SQLAlchemy hands on psycopg's lists instead of passing every
    element through ARRAY's item processor (0.6 million calls a day at 100,000 lines).
    Elsewhere one row per account.
    """
    table = ledger_account_table
    wanted = table.c.account_type.in_([kind.value for kind in kinds])
    matches = _in_line_ids(table.c.credit_line_id, postgresql)
    if postgresql:
        return (
            select(
                table.c.credit_line_id,
                func.array_agg(table.c.account_type, type_=NullType()),
                func.array_agg(table.c.id, type_=NullType()),
                func.array_agg(table.c.balance_fen, type_=NullType()),
            )
            .where(matches & wanted)
            .group_by(table.c.credit_line_id)
        )
    return select(
        table.c.credit_line_id, table.c.account_type, table.c.id, table.c.balance_fen
    ).where(matches & wanted)


AccountsOfLine = tuple[int, Sequence[str], Sequence[int], Sequence[int]]
"""A line id with its accounts' types, ids and balances (in the same order)."""


def _fetch_accounts(
    conn: Connection, line_ids: Sequence[int], kinds: Sequence[AccountType]
) -> Iterable[AccountsOfLine]:
    """The lines' accounts of `kinds`, grouped by line (lines without any are absent)."""
    postgresql = conn.dialect.name == "postgresql"
    parameters = {"line_ids": _line_ids_value(postgresql, line_ids)}
    statement = _balances_statement(tuple(kinds), postgresql)
    if postgresql:
        rows = conn.execute(statement, parameters)
        return [(int(row[0]), row[1], row[2], row[3]) for row in rows]
    grouped: dict[int, tuple[list[str], list[int], list[int]]] = {}
    for line_id, kind, account_id, balance_fen in conn.execute(statement, parameters):
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
    rules = {
        kind.value: (kind, ACCOUNT_RULES[kind].normal_sign, ACCOUNT_RULES[kind].floor_fen,
                     f":{kind.value}")
        for kind in kinds
    }  # fmt: skip
    refs: dict[str, tuple[int, int, int | None]] = {}
    for line_id, types, ids, amounts in _fetch_accounts(conn, line_ids, kinds):
        prefix = f"line:{line_id}"
        balances = dict.fromkeys(LINE_ACCOUNT_TYPES, 0)
        for account_type, account_id, balance_fen in zip(types, ids, amounts, strict=True):
            kind, sign, floor_fen, suffix = rules[account_type]
            balances[kind] = int(balance_fen) * sign
            # The code as `line_account_code` writes it (a line has one account per
            # type), built without its checks; the posting code then needs no query.
            refs[prefix + suffix] = (int(account_id), sign, floor_fen)
        found[line_id] = balances
    ctx.caches.accounts.remember_all(refs)
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
        code, version, status, opened_on, bill_day, customer_ref = headers[line_id]
        terms = ctx.caches.products.get(conn, str(code), int(str(version)))
        facts[line_id] = LineFacts(
            line_id, str(customer_ref), LineStatus(status), opened_on, int(str(bill_day)),  # type: ignore[arg-type]
            terms, balances.get(line_id, {}),
        )  # fmt: skip
    return facts


def get_business_key(as_of: date, step: str, subject_id: int) -> str:
    """`eod:<date>:<step>:<line or bill id>`: one posting batch per subject, step and date."""
    return f"eod:{as_of.isoformat()}:{step}:{subject_id}"
