"""The rows every decided application writes, in one statement on PostgreSQL.

They are the application row (`application_store`), its hashed attributes and ring links
(the fraud history, `fraud_history_sql`), the live-monitoring counts of every model that
scored it (`risk.live_monitoring`) and, for an approved one, its agreement's terms
document (`provenance`) and the outbox row that anchors the agreement (`agreements`), and
the response stored for the request's idempotency key. On PostgreSQL one INSERT with
data-modifying CTEs writes them all: one round trip and one execution instead of seven,
the same rows.
Elsewhere each module's own statements run one after another. The live counts are
upserted in key order either way, so two transactions never deadlock on them.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, TextClause, bindparam, text
from sqlalchemy.engine import Connection

from node_api.idempotency import idempotency_response_table
from node_api.kernel.outbox import OutboxKind, OutboxRow
from node_api.kernel.outbox_table import OUTBOX_TABLE, OutboxStatus
from node_api.ledger.sql import Row
from node_api.onboarding.agreements import AgreementRows
from node_api.onboarding.application_store import (
    StoredApplication,
    compute_application_row,
    insert_application,
)
from node_api.onboarding.fraud_history_sql import (
    compute_attribute_rows,
    compute_ring_link_rows,
    record_application,
)
from node_api.onboarding.provenance_tables import agreement_terms_table
from node_api.onboarding.tables import (
    application_attribute_table,
    application_table,
    ring_link_table,
)
from node_api.risk.fraud_config import FraudRuleConfig
from node_api.risk.fraud_facts import ApplicationFacts
from node_api.risk.live_monitoring import (
    LIVE_COUNT_UPSERT_SQL,
    compute_live_cell_arrays,
    record_live_score,
)
from node_api.risk.scorecard import ScoreResult


def insert_decision_rows(
    conn: Connection,
    stored: StoredApplication,
    facts: ApplicationFacts,
    config: FraudRuleConfig,
    scores: Sequence[ScoreResult],
    agreement: AgreementRows | None = None,
    responses: Sequence[Row] = (),
) -> None:
    """Write the application, its fraud history, the live counts of `scores` (one per
    model that scored it, in model id order), the rows of the agreement it opened, if
    any (its terms document and outbox row), and `responses` (the idempotency key's
    stored response: `idempotency.ResponseAlong`)."""
    agreement = agreement or AgreementRows()
    if conn.dialect.name != "postgresql":
        deferred: tuple[tuple[Table, Sequence[Mapping[str, Any]]], ...] = (
            (idempotency_response_table, responses),
            (OUTBOX_TABLE, agreement.outbox),
            (agreement_terms_table, agreement.terms),
        )
        for table, rows in deferred:
            if rows:
                conn.execute(table.insert(), list(rows))
        insert_application(conn, stored)
        record_application(conn, stored.id, stored.customer_id, facts, config)
        for score in scores:
            record_live_score(conn, score, shard_key=stored.id)
        return
    application = compute_application_row(stored)
    tables: list[tuple[_Rows, Sequence[Mapping[str, Any]]]] = [
        (_APPLICATION, [application]),
        (_ATTRIBUTES, compute_attribute_rows(stored.id, stored.customer_id, facts)),
        (_LINKS, compute_ring_link_rows(stored.id, facts, config)),
        (_TERMS, agreement.terms),
        (_OUTBOX, agreement.outbox),
        (_RESPONSES, responses),
    ]
    params = compute_live_cell_arrays(scores, stored.id)
    for rows_of, rows in tables:
        rows_of.bind(rows, params)
    conn.execute(_statement(tuple(len(rows) for _, rows in tables)), params)


@dataclass(frozen=True, slots=True)
class _Rows:
    """One table's part of the statement: a data-modifying CTE inserting the rows.

    Each row's values bind as `<prefix><row number>_<column>`, except the columns in
    `shared`, which every row of the statement has alike (the application id, its
    customer, the identity hash, the receipt time) and which bind once, by the shared
    name: psycopg converts a statement's placeholders once and caches the result only
    for statements of at most 50 parameters (`MAX_CACHED_STATEMENT_PARAMS`); above that
    it re-parses the text on every execution. For the same reason the columns in `fixed`,
    whose value is the same for every decision (a kind, a status), are SQL literals of
    that value, which each row must have."""

    cte: str
    table: Table
    prefix: str
    shared: Mapping[str, str]
    columns: tuple[str, ...] | None = None
    """The columns written, if not every column but `_DEFAULTED`'s."""
    fixed: Mapping[str, str | int] = field(default_factory=dict)

    def bind(self, rows: Sequence[Mapping[str, Any]], params: dict[str, Any]) -> None:
        """Put the rows' values into `params`; a shared value must equal its binding, a
        fixed one its literal."""
        fixed = self.fixed
        for number, row in enumerate(rows):
            for column, value in row.items():
                shared = self.shared.get(column)
                if column in fixed:
                    if value != fixed[column]:
                        raise ValueError(f"a decision's {self.table.name}.{column} changed")
                elif shared is None:
                    params[f"{self.prefix}{number}_{column}"] = value
                elif params.setdefault(shared, value) != value:
                    raise ValueError(f"the rows of one decision differ in {column}")

    def sql(self, count: int) -> str:
        columns = [column.name for column in self.table.columns if self._written(column.name)]
        rows = ", ".join(
            "(" + ", ".join(self._value(number, column) for column in columns) + ")"
            for number in range(count)
        )
        # Names come from the table definitions; every value is a bound parameter or a
        # literal of a constant of the code (`fixed`).
        return f"{self.cte} AS (INSERT INTO {self.table.name} ({', '.join(columns)}) VALUES {rows})"  # noqa: S608

    def types(self, count: int) -> dict[str, Any]:
        return {
            self._name(number, column.name): column.type
            for number in range(count)
            for column in self.table.columns
            if self._written(column.name) and column.name not in self.fixed
        }

    def _value(self, number: int, column: str) -> str:
        fixed = self.fixed.get(column)
        if fixed is None:
            return ":" + self._name(number, column)
        if isinstance(fixed, int):
            return str(fixed)
        return "'" + fixed.replace("'", "''") + "'"

    def _name(self, number: int, column: str) -> str:
        return self.shared.get(column) or f"{self.prefix}{number}_{column}"

    def _written(self, column: str) -> bool:
        """Whether the decision writes the column (the review's and the ids the
        database assigns are left to their defaults)."""
        if self.columns is not None:
            return column in self.columns
        return column not in _DEFAULTED.get(self.table.name, ())


_DEFAULTED = {
    application_table.name: ("reviewed_at", "review_action", "review_reason", "reviewer_key_id"),
    ring_link_table.name: ("id",),
}
_CUSTOMER = {"customer_id": "customer_id"}
_SHARED = {"application_id": "app_id", "identity_hash": "identity_hash", **_CUSTOMER}
_DECIDED = {
    "model_id": "model_id",
    "product_code": "product_code",
    "product_version": "product_version",
}
"""What the application row and its agreement's terms document both name."""
_APPLICATION = _Rows(
    "application",
    application_table,
    "app",
    {"id": "app_id", "applied_at": "applied_at", **_CUSTOMER, **_DECIDED},
)
_ATTRIBUTES = _Rows(
    "attributes", application_attribute_table, "attr", {**_SHARED, "applied_at": "applied_at"}
)
_LINKS = _Rows("links", ring_link_table, "link", _SHARED)
_TERMS = _Rows(
    "terms", agreement_terms_table, "terms", {**_SHARED, **_DECIDED, "decided_at": "applied_at"}
)
_STAMPS = {"created_at": "applied_at", "updated_at": "applied_at"}
_OUTBOX = _Rows(
    "outbox",
    OUTBOX_TABLE,
    "outbox",
    _STAMPS,
    tuple(OutboxRow.__annotations__),
    {
        "kind": OutboxKind.AGREEMENT_OPEN.value,
        "status": OutboxStatus.PENDING.value,
        "attempts": 0,
    },
)
_RESPONSES = _Rows("responses", idempotency_response_table, "response", {})
_PARTS = (_APPLICATION, _ATTRIBUTES, _LINKS, _TERMS, _OUTBOX, _RESPONSES)


@functools.cache
def _statement(counts: tuple[int, ...]) -> TextClause:
    """The statement for one shape (how many rows of each table), built once. Every
    value is a bound parameter typed by its column, so JSON, timestamps and bytes bind
    as the Core inserts bind them; the live counts' upsert is the main statement."""
    parts = [rows_of.sql(count) for rows_of, count in zip(_PARTS, counts, strict=True) if count]
    types: dict[str, Any] = {}
    for rows_of, count in zip(_PARTS, counts, strict=True):
        types.update(rows_of.types(count))
    sql = "WITH " + ", ".join(parts) + " " + LIVE_COUNT_UPSERT_SQL
    return text(sql).bindparams(*(bindparam(name, type_=kind) for name, kind in types.items()))
