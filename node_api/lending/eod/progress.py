"""Progress of an end-of-day run: a no-op reporter for library use, a rich progress bar
for the command line, and the final summary table."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Protocol

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

if TYPE_CHECKING:
    from node_api.lending.eod.runner import EodSummary


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

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def start_step(self, as_of: str, step: str, total: int, completed: int) -> None:
        task = self._progress.add_task(f"{as_of} {step}", total=max(total, 1), completed=completed)
        if total == 0:
            self._progress.update(task, completed=1)
        self._tasks[step] = task

    def advance(self, step: str, lines: int) -> None:
        self._progress.advance(self._tasks[step], lines)


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
