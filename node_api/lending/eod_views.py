"""Read view of end-of-day runs for the lender's operations console.

The latest runs, newest first, each with its steps in the order the runner records them
and, per step, what its committed batches did (batches, lines, postings, amount), summed
in SQL. The runner stores no clock times, so a step's duration is not known here; the
batch counts are what the books hold about a run's work.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from node_api.kernel.money import Fen
from node_api.lending.eod.runner import STEPS
from node_api.lending.eod.tables import eod_batch_table, eod_run_table, eod_step_table


class EodStepView(BaseModel):
    """One step of a run: its status and what its committed batches did (also its API
    view)."""

    model_config = ConfigDict(frozen=True)

    step: str
    status: str
    batches: int
    lines: int
    postings: int
    amount_fen: Fen


STEP_NAMES = tuple(step.name for step in STEPS)


@dataclass(frozen=True, slots=True)
class EodRunView:
    as_of: date
    status: str
    steps: tuple[EodStepView, ...]


def fetch_eod_runs(conn: Connection, *, limit: int) -> list[EodRunView]:
    """The latest `limit` end-of-day runs, newest first (module doc)."""
    runs = conn.execute(
        select(eod_run_table.c.as_of, eod_run_table.c.status)
        .order_by(eod_run_table.c.as_of.desc())
        .limit(limit)
    ).all()
    if not runs:
        return []
    dates = [run.as_of for run in runs]
    batch = eod_batch_table
    totals = (
        select(
            batch.c.as_of,
            batch.c.step,
            func.count().label("batches"),
            func.sum(batch.c.lines).label("lines"),
            func.sum(batch.c.postings).label("postings"),
            func.sum(batch.c.amount_fen).label("amount_fen"),
        )
        .where(batch.c.as_of.in_(dates))
        .group_by(batch.c.as_of, batch.c.step)
        .subquery()
    )
    step = eod_step_table
    rows = conn.execute(
        select(
            step.c.as_of,
            step.c.step,
            step.c.status,
            func.coalesce(totals.c.batches, 0),
            func.coalesce(totals.c.lines, 0),
            func.coalesce(totals.c.postings, 0),
            func.coalesce(totals.c.amount_fen, 0),
        )
        .outerjoin(totals, (totals.c.as_of == step.c.as_of) & (totals.c.step == step.c.step))
        .where(step.c.as_of.in_(dates))
    ).all()
    steps: dict[date, list[EodStepView]] = {day: [] for day in dates}
    for as_of, name, status, batches, lines, postings, amount_fen in rows:
        steps[as_of].append(
            EodStepView(
                step=name,
                status=status,
                batches=int(batches),
                lines=int(lines),
                postings=int(postings),
                amount_fen=Fen(int(amount_fen)),
            )
        )
    order = {name: position for position, name in enumerate(STEP_NAMES)}
    return [
        EodRunView(
            as_of=run.as_of,
            status=run.status,
            steps=tuple(sorted(steps[run.as_of], key=lambda item: order.get(item.step, 99))),
        )
        for run in runs
    ]
