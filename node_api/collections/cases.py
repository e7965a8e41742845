"""Cases: opened when end of day finds a line past due, worked in a queue, cured when the
line is current again.

`refresh_cases` is the one writer of case facts and treatments. It is idempotent for a
date (a second run changes nothing) and runs after end of day (the collections worker
does it whenever the business date moves) or on request. A new case takes the strategy
version and arm of the activation in force; an open case keeps both, and its queue,
channel and assignee are recomputed from its facts and promises under its own version.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select
from sqlalchemy.engine import Connection, RowMapping

from node_api.collections.facts import LineFacts, fetch_delinquent_line_ids, fetch_line_facts
from node_api.collections.model import Arm, CaseStatus, PromiseStatus
from node_api.collections.strategy import (
    CaseProfile,
    StrategyDocument,
    Treatment,
    compute_arm,
    compute_treatment,
)
from node_api.collections.strategy_store import (
    Activation,
    ensure_activation,
    fetch_strategy_version,
)
from node_api.collections.tables import case_table, promise_table
from node_api.kernel.errors import NotFoundError
from node_api.kernel.money import Fen
from node_api.ledger.sql import Row, begin_write, bulk_update, insert_ignoring_conflicts
from node_api.lending.billing_rules import BUCKET_ORDER, DelinquencyBucket


class CaseView(BaseModel):
    """A collections case as stored (also its API view)."""

    model_config = ConfigDict(frozen=True)

    id: int
    credit_line_id: int
    customer_ref: str
    status: str
    opened_on: date
    closed_on: date | None
    strategy_version: int
    arm: str
    opened_bucket: str
    bucket: str
    worst_bucket: str
    days_past_due: int
    outstanding_fen: Fen
    past_due_fen: Fen
    score: int | None
    score_band: str
    queue: str
    channel: str
    assignee: str | None
    charged_off_on: date | None
    refreshed_on: date


@dataclass(frozen=True, slots=True)
class RefreshSummary:
    as_of: date
    opened: int
    cured: int
    open_cases: int
    activation_id: int


class QueueView(BaseModel):
    """Open cases of a queue and channel (also their API view)."""

    model_config = ConfigDict(frozen=True)

    queue: str
    channel: str
    cases: int
    outstanding_fen: Fen


@dataclass(frozen=True, slots=True)
class PromiseFacts:
    broken: int = 0
    pending: bool = False


def _case_view(row: RowMapping) -> CaseView:
    """The view of a case row (its fields are the row's columns of the same names)."""
    return CaseView(**{name: row[name] for name in CaseView.model_fields})


def _strategy_bucket(facts: LineFacts) -> DelinquencyBucket:
    """The bucket a strategy sees: at least M1 for a line past due (a product's own
    thresholds may start its buckets later)."""
    if facts.bucket is DelinquencyBucket.M0:
        return DelinquencyBucket.M1
    return facts.bucket


def _worse(first: str, second: str) -> str:
    order = [bucket.value for bucket in BUCKET_ORDER]
    return first if order.index(first) >= order.index(second) else second


class _Strategies:
    """Strategy documents by version, read once per refresh."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._documents: dict[int, StrategyDocument] = {}

    def get(self, version: int) -> StrategyDocument:
        document = self._documents.get(version)
        if document is None:
            document = fetch_strategy_version(self._conn, version).document
            self._documents[version] = document
        return document


def refresh_cases(conn: Connection, as_of: date) -> RefreshSummary:
    """Open, update and cure cases from end of day's delinquency (module docstring)."""
    begin_write(conn)
    activation = ensure_activation(conn, as_of)
    open_rows = {
        int(row["credit_line_id"]): row
        for row in conn.execute(
            select(case_table).where(case_table.c.status == CaseStatus.OPEN.value)
        ).mappings()
    }
    delinquent = set(fetch_delinquent_line_ids(conn))
    facts = fetch_line_facts(conn, sorted(delinquent | set(open_rows)))
    strategies = _Strategies(conn)
    opened = _open_cases(conn, activation, strategies, as_of, delinquent - set(open_rows), facts)
    promises = _fetch_promise_facts(conn, [int(row["id"]) for row in open_rows.values()])
    updates: list[Row] = []
    cured = 0
    for line_id, row in sorted(open_rows.items()):
        line = facts.get(line_id)
        if line is None or line.days_past_due == 0:
            cured += 1
            updates.append(_cured_row(row, as_of))
            continue
        document = strategies.get(int(row["strategy_version"]))
        updates.append(
            _updated_row(row, line, document, promises.get(int(row["id"]), PromiseFacts()), as_of)
        )
    bulk_update(conn, case_table, updates, keys=("id",), lock_first=True)
    open_cases = conn.execute(
        select(func.count()).where(case_table.c.status == CaseStatus.OPEN.value)
    ).scalar_one()
    return RefreshSummary(as_of, opened, cured, int(open_cases), activation.id)


def _profile(line: LineFacts, promises: PromiseFacts) -> CaseProfile:
    return CaseProfile(
        credit_line_id=line.credit_line_id,
        bucket=_strategy_bucket(line),
        days_past_due=line.days_past_due,
        outstanding_fen=line.outstanding_fen,
        score=line.score,
        broken_promises=promises.broken,
        promise_pending=promises.pending,
    )


def _treated_columns(line: LineFacts, treatment: Treatment) -> Row:
    """What a case takes from its line's facts and its strategy's treatment, when it is
    opened and at every refresh while it stays open."""
    return {
        "outstanding_fen": line.outstanding_fen,
        "past_due_fen": line.past_due_fen,
        "score": line.score,
        "score_band": treatment.score_band,
        "queue": treatment.queue,
        "channel": treatment.channel.value,
        "assignee": treatment.assignee,
        "charged_off_on": line.charged_off_on,
    }


def _open_cases(
    conn: Connection,
    activation: Activation,
    strategies: _Strategies,
    as_of: date,
    line_ids: Iterable[int],
    facts: Mapping[int, LineFacts],
) -> int:
    rows: list[Row] = []
    for line_id in sorted(line_ids):
        line = facts.get(line_id)
        if line is None:
            continue
        arm = compute_arm(activation.id, line_id, activation.challenger_share_bps)
        version = activation.champion_version
        if arm is Arm.CHALLENGER and activation.challenger_version is not None:
            version = activation.challenger_version
        treatment = compute_treatment(strategies.get(version), _profile(line, PromiseFacts()))
        bucket = _strategy_bucket(line).value
        rows.append(
            {
                "credit_line_id": line_id,
                "customer_ref": line.customer_ref,
                "status": CaseStatus.OPEN.value,
                "opened_on": as_of,
                "closed_on": None,
                "activation_id": activation.id,
                "strategy_version": version,
                "arm": arm.value,
                "opened_bucket": bucket,
                "bucket": bucket,
                "worst_bucket": bucket,
                "days_past_due": line.days_past_due,
                **_treated_columns(line, treatment),
                "refreshed_on": as_of,
            }
        )
    if not rows:
        return 0
    inserted = insert_ignoring_conflicts(
        conn,
        case_table,
        rows,
        ("customer_ref", "credit_line_id", "opened_on"),
        returning=("id",),
    )
    return len(inserted.all())


_UPDATED_COLUMNS = (
    "worst_bucket",
    "outstanding_fen",
    "past_due_fen",
    "score",
    "score_band",
    "queue",
    "channel",
    "assignee",
    "charged_off_on",
)
"""Besides status, dates, bucket and days past due: what a refresh may change."""


def _cured_row(row: RowMapping, as_of: date) -> Row:
    """The case closed as cured; its last queue and balances are kept as they were."""
    return {
        "id": int(row["id"]),
        "status": CaseStatus.CURED.value,
        "closed_on": as_of,
        "bucket": DelinquencyBucket.M0.value,
        "days_past_due": 0,
        "refreshed_on": as_of,
        **{name: row[name] for name in _UPDATED_COLUMNS},
    }


def _updated_row(
    row: RowMapping,
    line: LineFacts,
    document: StrategyDocument,
    promises: PromiseFacts,
    as_of: date,
) -> Row:
    treatment = compute_treatment(document, _profile(line, promises))
    bucket = _strategy_bucket(line).value
    return {
        "id": int(row["id"]),
        "status": CaseStatus.OPEN.value,
        "closed_on": None,
        "bucket": bucket,
        "days_past_due": line.days_past_due,
        "refreshed_on": as_of,
        "worst_bucket": _worse(str(row["worst_bucket"]), bucket),
        **_treated_columns(line, treatment),
    }


def _fetch_promise_facts(conn: Connection, case_ids: Sequence[int]) -> dict[int, PromiseFacts]:
    """Per case: how many promises were broken, and whether one is pending."""
    if not case_ids:
        return {}
    table = promise_table
    rows = conn.execute(
        select(table.c.case_id, table.c.status, func.count())
        .where(
            table.c.case_id.in_(list(case_ids))
            & table.c.status.in_([PromiseStatus.BROKEN.value, PromiseStatus.PENDING.value])
        )
        .group_by(table.c.case_id, table.c.status)
    )
    found: dict[int, PromiseFacts] = {}
    for case_id, status, count in rows:
        current = found.get(int(case_id), PromiseFacts())
        if status == PromiseStatus.BROKEN.value:
            found[int(case_id)] = PromiseFacts(int(count), current.pending)
        else:
            found[int(case_id)] = PromiseFacts(current.broken, True)
    return found


def fetch_case(conn: Connection, case_id: int, *, lock: bool = False) -> CaseView:
    query = select(case_table).where(case_table.c.id == case_id)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).mappings().one_or_none()
    if row is None:
        raise NotFoundError(f"collections case {case_id} does not exist", field="case_id")
    return _case_view(row)


def fetch_cases(
    conn: Connection,
    *,
    queue: str | None = None,
    assignee: str | None = None,
    status: CaseStatus | None = CaseStatus.OPEN,
    after_id: int = 0,
    limit: int = 100,
) -> list[CaseView]:
    """Cases in id order (page with `after_id`), optionally of one queue or assignee."""
    table = case_table
    query = select(table).where(table.c.id > after_id)
    if status is not None:
        query = query.where(table.c.status == status.value)
    if queue is not None:
        query = query.where(table.c.queue == queue)
    if assignee is not None:
        query = query.where(table.c.assignee == assignee)
    rows = conn.execute(query.order_by(table.c.id).limit(limit)).mappings()
    return [_case_view(row) for row in rows]


def fetch_queues(conn: Connection) -> list[QueueView]:
    """Open cases per queue and channel, with their outstanding balance."""
    table = case_table
    rows = conn.execute(
        select(table.c.queue, table.c.channel, func.count(), func.sum(table.c.outstanding_fen))
        .where(table.c.status == CaseStatus.OPEN.value)
        .group_by(table.c.queue, table.c.channel)
        .order_by(table.c.queue, table.c.channel)
    )
    return [
        QueueView(
            queue=str(queue),
            channel=str(channel),
            cases=int(count),
            outstanding_fen=int(total or 0),
        )
        for queue, channel, count, total in rows
    ]
