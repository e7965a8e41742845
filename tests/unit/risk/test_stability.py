"""Stability over time: the Gini of matured outcomes, weekly, and the alerts thresholds raise."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from node_api.risk.monitoring import (
    PsiResult,
    StabilityBand,
    StabilityReport,
    StabilityThresholds,
    WeeklyGini,
    compute_alerts,
    compute_gini,
    compute_weekly_gini,
)


@given(
    st.lists(st.tuples(st.integers(300, 700), st.booleans()), min_size=2, max_size=60).filter(
        lambda rows: len({bad for _, bad in rows}) == 2
    )
)
def test_gini_is_twice_the_auc_of_the_score_ranking_goods_above_bads_minus_one(
    rows: list[tuple[int, bool]],
) -> None:
    scores = [score for score, _ in rows]
    bads = [bad for _, bad in rows]
    expected = 2.0 * roc_auc_score(np.array(bads), -np.array(scores, dtype=float)) - 1.0
    gini = compute_gini(scores, bads)
    assert gini is not None
    assert gini == pytest.approx(expected, abs=1e-12)


def test_gini_needs_both_outcomes() -> None:
    assert compute_gini([500, 600], [False, False]) is None
    assert compute_gini([500, 600], [True, True]) is None
    assert compute_gini([400, 600], [True, False]) == 1.0
    assert compute_gini([600, 400], [True, False]) == -1.0


def test_weeks_run_monday_to_sunday_and_wait_for_enough_matured_bads() -> None:
    monday = date(2025, 6, 2)
    rows: list[tuple[date, int, bool | None]] = [
        (monday, 400, True),
        (monday + timedelta(days=6), 450, True),
        (monday + timedelta(days=3), 600, False),
        (monday + timedelta(days=2), 620, None),
        (monday + timedelta(days=7), 410, True),
        (monday + timedelta(days=8), 640, False),
    ]
    first, second = compute_weekly_gini(rows, min_bads=2)
    assert first == WeeklyGini(monday, lines=4, matured=3, bads=2, gini=1.0)
    assert second.week_start == monday + timedelta(days=7)
    assert (second.lines, second.matured, second.bads, second.gini) == (2, 2, 1, None)


def _report(total: float, by_name: dict[str, float]) -> StabilityReport:
    def result(psi: float) -> PsiResult:
        return PsiResult(psi, StabilityBand.STABLE, 10)

    return StabilityReport("m", {k: result(v) for k, v in by_name.items()}, result(total))


def test_alerts_name_each_psi_above_its_threshold_and_each_week_below_the_gini_floor() -> None:
    thresholds = StabilityThresholds(psi_alert=0.25, gini_drop_alert=0.10, gini_min_bads=5)
    weeks = [
        WeeklyGini(date(2025, 6, 2), 50, 40, 8, 0.45),
        WeeklyGini(date(2025, 6, 9), 50, 40, 8, 0.29),
        WeeklyGini(date(2025, 6, 16), 50, 0, 0, None),
    ]
    alerts = compute_alerts(_report(0.3, {"age": 0.26, "income": 0.25}), weeks, 0.40, thresholds)
    assert [(a.kind, a.subject) for a in alerts] == [
        ("psi", "score"),
        ("psi", "age"),
        ("gini", "2025-06-09"),
    ]
    assert alerts[-1].threshold == pytest.approx(0.30)
    assert compute_alerts(_report(0.1, {"age": 0.1}), weeks[:1], 0.40, thresholds) == []
