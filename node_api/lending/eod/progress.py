"""Progress of an end-of-day run: a no-op reporter for library use, a rich progress bar
for the command line, and the final summary table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from node_api.lending.eod.summary import EodSummary


class ProgressReporter(Protocol):
    def start_step(self, as_of: str, step: str, total: int, completed: int) -> None: ...

    def advance(self, step: str, lines: int) -> None: ...


class NullProgress:
    """Reports nothing."""

    def start_step(self, as_of: str, step: str, total: int, completed: int) -> None:
        return None

    def advance(self, step: str, lines: int) -> None:
        return None


class RichProgress:
    """One bar per step of the current date, lines done out of lines to do."""

    def __init__(self, console: Console | None = None) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description:<24}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("lines"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._progress.stop()

    def start_step(self, as_of: str, step: str, total: int, completed: int) -> None:
        """Show the step's bar for this date (one bar per step, reused date after date)."""
        description = f"{as_of} {step}"
        if total == 0:
            total = completed = 1
        task = self._tasks.get(step)
        if task is None:
            self._tasks[step] = self._progress.add_task(
                description, total=total, completed=completed
            )
        else:
            self._progress.reset(task, total=total, completed=completed, description=description)

    def advance(self, step: str, lines: int) -> None:
        self._progress.advance(self._tasks[step], lines)


def render_dates(summaries: Sequence[EodSummary]) -> Table:
    """One row per closed date: lines handled, posting batches written, seconds."""
    table = Table(title=f"end of day: {len(summaries)} dates")
    for heading in ("date", "lines", "postings", "seconds"):
        table.add_column(heading, justify="left" if heading == "date" else "right")
    for summary in summaries:
        table.add_row(
            summary.as_of.isoformat(),
            f"{summary.lines:,}",
            f"{summary.postings:,}",
            f"{summary.elapsed_s:.2f}",
        )
    return table


def render_summary(summary: EodSummary) -> Table:
    """The summary of one date: per step lines, posting batches, amount and time."""
    title = f"end of day {summary.as_of.isoformat()}"
    if summary.already_done:
        title += " (already done: nothing posted)"
    table = Table(title=title)
    for heading in ("step", "lines", "batches", "postings", "amount (fen)", "seconds"):
        table.add_column(heading, justify="left" if heading == "step" else "right")
    for step in summary.steps:
        table.add_row(
            step.name,
            f"{step.lines:,}",
            f"{step.line_batches:,}",
            f"{step.postings:,}",
            f"{step.amount_fen:,}",
            f"{step.elapsed_s:.2f}",
        )
    table.add_row(
        "total", f"{summary.lines:,}", "", f"{summary.postings:,}", "", f"{summary.elapsed_s:.2f}"
    )
    return table
