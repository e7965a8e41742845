"""What an end-of-day run reports: per-step totals and the date's summary."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True, slots=True)
class StepSummary:
    """A step's totals over every batch committed for the date (across restarts)."""

    name: str
    lines: int
    line_batches: int
    postings: int
    amount_fen: int
    elapsed_s: float


@dataclass(frozen=True, slots=True)
class EodSummary:
    as_of: date
    steps: tuple[StepSummary, ...]
    elapsed_s: float
    already_done: bool

    @property
    def lines(self) -> int:
        return sum(step.lines for step in self.steps)

    @property
    def postings(self) -> int:
        return sum(step.postings for step in self.steps)
