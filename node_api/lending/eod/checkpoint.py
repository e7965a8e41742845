"""Checkpoints of an end-of-day run (see `tables`): where a step stands, written in the
same transaction as the work they record."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.engine import Connection

from node_api.ledger.sql import insert_ignoring_conflicts
from node_api.lending.eod.step import BatchResult
from node_api.lending.eod.tables import eod_batch_table, eod_run_table, eod_step_table

RUNNING = "running"
DONE = "done"


@dataclass(frozen=True, slots=True)
class StepPosition:
    """Committed batches of a step: how many, the last line they covered, their totals."""

    done: bool
    batches: int
    last_line_id: int
    lines: int
    postings: int
    amount_fen: int


def open_run(conn: Connection, as_of: date, steps: Sequence[str]) -> str:
    """Create the run's rows if missing; return the run's status."""
    insert_ignoring_conflicts(conn, eod_run_table, [{"as_of": as_of, "status": RUNNING}], ["as_of"])
    insert_ignoring_conflicts(
        conn,
        eod_step_table,
        [{"as_of": as_of, "step": step, "status": RUNNING} for step in steps],
        ["as_of", "step"],
    )
    return str(
        conn.execute(
            select(eod_run_table.c.status).where(eod_run_table.c.as_of == as_of)
        ).scalar_one()
    )


def fetch_unfinished_run(conn: Connection) -> date | None:
    """The earliest date whose run has not finished, if any."""
    value = conn.execute(
        select(func.min(eod_run_table.c.as_of)).where(eod_run_table.c.status != DONE)
    ).scalar_one_or_none()
    return value if isinstance(value, date) else None


def lock_step(conn: Connection, as_of: date, step: str) -> bool:
    """Lock the step's row (one runner per step at a time); True if the step is done."""
    table = eod_step_table
    status = conn.execute(
        select(table.c.status)
        .where((table.c.as_of == as_of) & (table.c.step == step))
        .with_for_update()
    ).scalar_one()
    return bool(status == DONE)


_batches, _steps = eod_batch_table, eod_step_table
_POSITION = select(
    func.count(),
    func.coalesce(func.max(_batches.c.last_line_id), 0),
    func.coalesce(func.sum(_batches.c.lines), 0),
    func.coalesce(func.sum(_batches.c.postings), 0),
    func.coalesce(func.sum(_batches.c.amount_fen), 0),
).where((_batches.c.as_of == bindparam("as_of")) & (_batches.c.step == bindparam("step")))
_STATUS = select(_steps.c.status).where(
    (_steps.c.as_of == bindparam("as_of")) & (_steps.c.step == bindparam("step"))
)


def fetch_position(conn: Connection, as_of: date, step: str) -> StepPosition:
    params = {"as_of": as_of, "step": step}
    count, last, lines, postings, amount = conn.execute(_POSITION, params).one()
    status = conn.execute(_STATUS, params).scalar_one_or_none()
    return StepPosition(
        status == DONE, int(count), int(last), int(lines), int(postings), int(amount)
    )


def fetch_positions(conn: Connection, as_of: date) -> dict[str, StepPosition]:
    """Every step's position for the date, in two queries (steps without rows absent)."""
    batches, steps = eod_batch_table, eod_step_table
    totals = {
        str(step): (int(count), int(last), int(lines), int(postings), int(amount))
        for step, count, last, lines, postings, amount in conn.execute(
            select(
                batches.c.step,
                func.count(),
                func.max(batches.c.last_line_id),
                func.sum(batches.c.lines),
                func.sum(batches.c.postings),
                func.sum(batches.c.amount_fen),
            )
            .where(batches.c.as_of == as_of)
            .group_by(batches.c.step)
        )
    }
    return {
        str(step): StepPosition(status == DONE, *totals.get(str(step), (0, 0, 0, 0, 0)))
        for step, status in conn.execute(
            select(steps.c.step, steps.c.status).where(steps.c.as_of == as_of)
        )
    }


def record_batch(
    conn: Connection, as_of: date, step: str, batch_no: int, last_line_id: int, result: BatchResult
) -> None:
    conn.execute(
        eod_batch_table.insert().values(
            as_of=as_of,
            step=step,
            batch_no=batch_no,
            last_line_id=last_line_id,
            lines=result.lines,
            postings=result.batches,
            amount_fen=result.amount_fen,
        )
    )


def finish_step(conn: Connection, as_of: date, step: str) -> None:
    table = eod_step_table
    conn.execute(
        update(table).where((table.c.as_of == as_of) & (table.c.step == step)).values(status=DONE)
    )


def finish_run(conn: Connection, as_of: date) -> None:
    conn.execute(update(eod_run_table).where(eod_run_table.c.as_of == as_of).values(status=DONE))
