"""Outcomes per strategy arm: cure rate, roll rate and promise-kept rate.

Each arm is the cohort of cases opened under one strategy version in one arm, counted
over their whole life so far:
- cure rate: cured cases / cases;
- roll rate: cases whose worst bucket is beyond the bucket they opened in / cases;
- promise-kept rate: kept promises / promises decided (kept + broken).
Rates are in basis points, rounded half-even; None when nothing was counted.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from node_api.collections.model import CaseStatus, PromiseStatus
from node_api.collections.tables import case_table, promise_table
from node_api.kernel.money import BPS_DENOMINATOR, div_half_even
from node_api.lending.billing_rules import BUCKET_ORDER

_RANK = {bucket.value: index for index, bucket in enumerate(BUCKET_ORDER)}


@dataclass(frozen=True, slots=True)
class ArmReport:
    strategy_version: int
    arm: str
    cases: int
    open_cases: int
    cured: int
    rolled: int
    promises_kept: int
    promises_broken: int
    cure_rate_bps: int | None
    roll_rate_bps: int | None
    promise_kept_rate_bps: int | None


def compute_rate_bps(count: int, total: int) -> int | None:
    """count / total in bps, half-even; None for an empty total."""
    return div_half_even(count * BPS_DENOMINATOR, total) if total else None


def fetch_arm_reports(conn: Connection) -> list[ArmReport]:
    """One report per (strategy version, arm) that has cases, by version then arm."""
    cases = case_table
    tallies: dict[tuple[int, str], list[int]] = {}
    rows = conn.execute(
        select(
            cases.c.strategy_version,
            cases.c.arm,
            cases.c.status,
            cases.c.opened_bucket,
            cases.c.worst_bucket,
            func.count(),
        ).group_by(
            cases.c.strategy_version,
            cases.c.arm,
            cases.c.status,
            cases.c.opened_bucket,
            cases.c.worst_bucket,
        )
    )
    for version, arm, status, opened, worst, count in rows:
        tally = tallies.setdefault((int(version), str(arm)), [0, 0, 0, 0, 0, 0])
        tally[0] += int(count)
        tally[1] += int(count) if status == CaseStatus.OPEN.value else 0
        tally[2] += int(count) if status == CaseStatus.CURED.value else 0
        tally[3] += int(count) if _RANK[str(worst)] > _RANK[str(opened)] else 0
    promises = promise_table
    decided = conn.execute(
        select(cases.c.strategy_version, cases.c.arm, promises.c.status, func.count())
        .join(cases, cases.c.id == promises.c.case_id)
        .where(promises.c.status.in_([PromiseStatus.KEPT.value, PromiseStatus.BROKEN.value]))
        .group_by(cases.c.strategy_version, cases.c.arm, promises.c.status)
    )
    for version, arm, status, count in decided:
        tally = tallies.setdefault((int(version), str(arm)), [0, 0, 0, 0, 0, 0])
        tally[4 if status == PromiseStatus.KEPT.value else 5] += int(count)
    return [
        ArmReport(
            strategy_version=version,
            arm=arm,
            cases=total,
            open_cases=still_open,
            cured=cured,
            rolled=rolled,
            promises_kept=kept,
            promises_broken=broken,
            cure_rate_bps=compute_rate_bps(cured, total),
            roll_rate_bps=compute_rate_bps(rolled, total),
            promise_kept_rate_bps=compute_rate_bps(kept, kept + broken),
        )
        for (version, arm), (total, still_open, cured, rolled, kept, broken) in sorted(
            tallies.items()
        )
    ]
