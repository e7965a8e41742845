"""The shape of an end-of-day step: which lines it concerns, and one batch of them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import exists, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement

from node_api.lending.eod.context import EodContext
from node_api.lending.eod.tables import line_delinquency_table


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What one batch did: lines handled, posting batches written, and the step's amount
    (interest accrued, fees charged, amounts billed ...)."""

    lines: int
    batches: int
    amount_fen: int


ListCandidates = Callable[[Connection, EodContext, date, int], list[int]]
RunBatch = Callable[[Connection, EodContext, date, Sequence[int]], BatchResult]


@dataclass(frozen=True, slots=True)
class Step:
    """`list_candidates(conn, ctx, as_of, after_line_id)` returns ascending line ids the
    step may concern (a superset: `run_batch` re-checks each under its lock);
    `run_batch(conn, ctx, as_of, line_ids)` does the step for them in the caller's
    transaction."""

    name: str
    list_candidates: ListCandidates
    run_batch: RunBatch


def not_charged_off(line_id: ColumnElement[int]) -> ColumnElement[bool]:
    """SQL: the line has not been charged off."""
    state = line_delinquency_table
    return ~exists(
        select(state.c.credit_line_id).where(
            (state.c.credit_line_id == line_id) & state.c.charged_off_on.is_not(None)
        )
    )


def get_ids(conn: Connection, statement: object) -> list[int]:
    """Distinct ascending ints of a one-column query."""
    return sorted({int(value) for value in conn.execute(statement).scalars()})  # type: ignore[call-overload]
