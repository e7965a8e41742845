"""Promises to pay: recorded on a case, then evaluated against the line's repayments.

A promise of `amount_fen` by `due_on`, made on `promised_on`, is kept once the line's
posted repayments dated from `promised_on` to `due_on` reach the amount (evaluated on
any day up to the due date, so a payment keeps it at the next evaluation), and broken
when a day after `due_on` is evaluated without that. Evaluation runs after end of day
and on request; it is idempotent for a date. Broken and pending promises feed the
strategy (`broken_promises_min`, `promise_pending`).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Final

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.engine import Connection, RowMapping

from node_api.collections.cases import fetch_case
from node_api.collections.facts import fetch_paid_fen
from node_api.collections.model import CaseStatus, PromiseStatus
from node_api.collections.tables import attempt_table, promise_table
from node_api.kernel.errors import ConflictError, CreditNetValueError
from node_api.kernel.money import Fen
from node_api.ledger.sql import begin_write

PROMISE_DAYS_MAX: Final = 30
"""The latest due date a promise may name, in days after it is made."""


class PromiseView(BaseModel):
    """A promise to pay as stored (also its API view)."""

    model_config = ConfigDict(frozen=True)

    id: int
    case_id: int
    credit_line_id: int
    amount_fen: Fen
    paid_fen: Fen
    promised_on: date
    due_on: date
    status: str
    evaluated_on: date | None
    attempt_id: int | None
    recorded_by: str


class EvaluationSummary(BaseModel):
    """Promises decided on a date, and those still pending (also its API view)."""

    model_config = ConfigDict(frozen=True)

    as_of: date
    kept: int
    broken: int
    pending: int


def _view(row: RowMapping) -> PromiseView:
    return PromiseView(**{name: row[name] for name in PromiseView.model_fields})


def record_promise(
    conn: Connection,
    *,
    case_id: int,
    amount_fen: Fen,
    due_on: date,
    promised_on: date,
    attempt_id: int | None,
    by: str,
) -> PromiseView:
    """Record a promise; a case has at most one pending promise at a time."""
    if amount_fen <= 0:
        raise CreditNetValueError("a promise is of a positive amount", field="amount_fen")
    if not promised_on <= due_on <= promised_on + timedelta(days=PROMISE_DAYS_MAX):
        raise CreditNetValueError(
            f"a promise falls due within {PROMISE_DAYS_MAX} days of being made", field="due_on"
        )
    begin_write(conn)
    case = fetch_case(conn, case_id, lock=True)
    if case.status != CaseStatus.OPEN:
        raise ConflictError("the case is closed", field="case_id", code="case_not_open")
    if attempt_id is not None:
        owner = conn.execute(
            select(attempt_table.c.case_id).where(attempt_table.c.id == attempt_id)
        ).scalar_one_or_none()
        if owner != case_id:
            raise CreditNetValueError("no such attempt on this case", field="attempt_id")
    table = promise_table
    pending = conn.execute(
        select(table.c.id).where(
            (table.c.case_id == case_id) & (table.c.status == PromiseStatus.PENDING.value)
        )
    ).first()
    if pending is not None:
        raise ConflictError(
            "the case already has a pending promise",
            field="case_id",
            code="promise_already_pending",
        )
    promise_id = conn.execute(
        table.insert()
        .values(
            case_id=case_id,
            credit_line_id=case.credit_line_id,
            customer_id=case.customer_ref,
            amount_fen=amount_fen,
            paid_fen=0,
            promised_on=promised_on,
            due_on=due_on,
            status=PromiseStatus.PENDING.value,
            attempt_id=attempt_id,
            recorded_by=by,
        )
        .returning(table.c.id)
    ).scalar_one()
    return fetch_promise(conn, int(promise_id))


def evaluate_promises(conn: Connection, as_of: date) -> EvaluationSummary:
    """Decide every pending promise made on or before `as_of` (module docstring)."""
    begin_write(conn)
    table = promise_table
    rows = conn.execute(
        select(table)
        .where((table.c.status == PromiseStatus.PENDING.value) & (table.c.promised_on <= as_of))
        .order_by(table.c.id)
    ).mappings()
    kept = broken = pending = 0
    for row in list(rows):
        promise = _view(row)
        paid_fen = fetch_paid_fen(
            conn, promise.credit_line_id, promise.promised_on, min(as_of, promise.due_on)
        )
        status = PromiseStatus.PENDING
        if paid_fen >= promise.amount_fen:
            status, kept = PromiseStatus.KEPT, kept + 1
        elif as_of > promise.due_on:
            status, broken = PromiseStatus.BROKEN, broken + 1
        else:
            pending += 1
        conn.execute(
            table.update()
            .where((table.c.id == promise.id) & (table.c.status == PromiseStatus.PENDING.value))
            .values(
                status=status.value,
                paid_fen=paid_fen,
                evaluated_on=None if status is PromiseStatus.PENDING else as_of,
            )
        )
    return EvaluationSummary(as_of=as_of, kept=kept, broken=broken, pending=pending)


def fetch_promise(conn: Connection, promise_id: int) -> PromiseView:
    row = conn.execute(select(promise_table).where(promise_table.c.id == promise_id)).mappings()
    return _view(row.one())


def fetch_promises(conn: Connection, case_id: int) -> list[PromiseView]:
    rows = conn.execute(
        select(promise_table).where(promise_table.c.case_id == case_id).order_by(promise_table.c.id)
    ).mappings()
    return [_view(row) for row in rows]
