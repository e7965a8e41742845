"""End-of-day step timings as this node measured them, for the operations console.

The books keep which steps of a date finished, not how long they took; the node's
end-of-day scheduler records each step's duration in a Prometheus histogram
(`creditnet_eod_step_duration_seconds`, `runtime.background`). This reads that
histogram's count and sum per step: the dates this process closed since it started
(dates closed by `creditnet eod` in another process are not in it).
"""

from __future__ import annotations

from dataclasses import dataclass

from node_api.runtime.background import EOD_STEP_SECONDS


@dataclass(frozen=True, slots=True)
class StepTiming:
    step: str
    dates: int
    """Dates whose step this process ran and timed."""
    total_s: float
    mean_s: float


def read_eod_step_timings() -> list[StepTiming]:
    """Per step with at least one timed date: how many, their total and mean seconds."""
    counts: dict[str, float] = {}
    sums: dict[str, float] = {}
    for family in EOD_STEP_SECONDS.collect():
        for sample in family.samples:
            step = sample.labels.get("step")
            if step is None:
                continue
            if sample.name.endswith("_count"):
                counts[step] = sample.value
            elif sample.name.endswith("_sum"):
                sums[step] = sample.value
    return [
        StepTiming(step, int(count), sums.get(step, 0.0), sums.get(step, 0.0) / count)
        for step, count in counts.items()
        if count > 0
    ]
