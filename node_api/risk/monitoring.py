"""Population stability of live applications against the card's training distribution.

PSI = sum over bins of (live share - training share) * ln(live share / training
share). Each characteristic gets its own PSI; the total is the PSI of the score
distribution over the card's score bands (the system stability index). Bands:
below 0.1 stable, below 0.25 watch, otherwise shift. Live counts are plain
integers per bin, so the node can keep them in a table and add them up in SQL.

Over time, once outcomes mature, the weekly Gini of the score on the lines each week
opened (`compute_weekly_gini`) shows whether the model still ranks as it did in
training; `compute_alerts` raises an alert for every PSI above its threshold and every
matured week whose Gini fell more than allowed below the training Gini.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from node_api.risk.card import ScorecardCard
from node_api.risk.scorecard import ScoreResult

PSI_WATCH_MIN = 0.1
PSI_SHIFT_MIN = 0.25
SHARE_FLOOR = 1e-4
"""Shares below this are raised to it, so an empty bin gives a large but finite PSI."""


class StabilityBand(StrEnum):
    STABLE = "stable"
    WATCH = "watch"
    SHIFT = "shift"


def get_stability_band(psi: float) -> StabilityBand:
    if psi < PSI_WATCH_MIN:
        return StabilityBand.STABLE
    return StabilityBand.WATCH if psi < PSI_SHIFT_MIN else StabilityBand.SHIFT


def compute_psi(expected_shares: Sequence[float], actual_counts: Sequence[int]) -> float:
    """PSI of live counts against training shares (same bins, same order)."""
    if len(expected_shares) != len(actual_counts):
        raise ValueError("live counts and training shares must cover the same bins")
    live_total = sum(actual_counts)
    if live_total <= 0:
        return 0.0
    psi = 0.0
    for expected_share, count in zip(expected_shares, actual_counts, strict=True):
        expected = max(expected_share, SHARE_FLOOR)
        actual = max(count / live_total, SHARE_FLOOR)
        psi += (actual - expected) * math.log(actual / expected)
    return psi


@dataclass(frozen=True, slots=True)
class PsiResult:
    psi: float
    band: StabilityBand
    live_count: int


@dataclass(frozen=True, slots=True)
class StabilityReport:
    model_id: str
    characteristics: Mapping[str, PsiResult]
    total: PsiResult


@dataclass(slots=True)
class LiveCounts:
    """Live bin counts per characteristic and live score-band counts for one card."""

    model_id: str
    bins: dict[str, list[int]]
    score_bands: list[int]

    @classmethod
    def empty(cls, card: ScorecardCard) -> LiveCounts:
        return cls(
            model_id=card.model_id,
            bins={c.name: [0] * len(c.bins) for c in card.characteristics},
            score_bands=[0] * (len(card.score_bands.edges) + 1),
        )

    def add(self, result: ScoreResult) -> None:
        """Count one scored application."""
        if result.model_id != self.model_id:
            raise ValueError("the score came from a different card")
        for name, index in result.bin_indices.items():
            self.bins[name][index] += 1
        self.score_bands[result.score_band] += 1


def _result(expected: Sequence[float], counts: Sequence[int]) -> PsiResult:
    psi = compute_psi(expected, counts)
    return PsiResult(psi, get_stability_band(psi), sum(counts))


def compute_stability_report(card: ScorecardCard, live: LiveCounts) -> StabilityReport:
    """PSI per characteristic and of the score distribution, with their bands."""
    if live.model_id != card.model_id:
        raise ValueError("live counts belong to a different card")
    characteristics = {
        c.name: _result([b.share for b in c.bins], live.bins[c.name]) for c in card.characteristics
    }
    total = _result(card.score_bands.shares, live.score_bands)
    return StabilityReport(card.model_id, characteristics, total)


def compute_gini(scores: Sequence[int], is_bad: Sequence[bool]) -> float | None:
    """Gini = 2 * AUC - 1 of the score separating goods (high) from bads (low): the
    Mann-Whitney share of (good, bad) pairs the score orders right, ties counting half.
    None without at least one good and one bad."""
    goods = sorted(score for score, bad in zip(scores, is_bad, strict=True) if not bad)
    bads = [score for score, bad in zip(scores, is_bad, strict=True) if bad]
    if not goods or not bads:
        return None
    right = 0.0
    for score in bads:
        below = bisect.bisect_left(goods, score)
        ties = bisect.bisect_right(goods, score) - below
        right += len(goods) - below - ties + 0.5 * ties
    auc = right / (len(goods) * len(bads))
    return 2.0 * auc - 1.0


@dataclass(frozen=True, slots=True)
class StabilityThresholds:
    """When monitoring raises an alert (settings `risk_psi_alert`, `risk_gini_drop_alert`,
    `risk_gini_min_bads`)."""

    psi_alert: float = PSI_SHIFT_MIN
    gini_drop_alert: float = 0.10
    gini_min_bads: int = 5


@dataclass(frozen=True, slots=True)
class WeeklyGini:
    """The lines opened in one week (Monday to Sunday, by business date)."""

    week_start: date
    lines: int
    matured: int
    """Lines whose outcome is known."""
    bads: int
    gini: float | None
    """None until `gini_min_bads` matured lines turned bad (and one stayed good)."""


@dataclass(frozen=True, slots=True)
class StabilityAlert:
    kind: str
    """`psi` (a characteristic's or the score's population shifted) or `gini` (a week's
    matured discrimination fell below the training Gini by more than allowed)."""
    subject: str
    """The characteristic (`score` for the score distribution), or the week's Monday."""
    value: float
    threshold: float


def compute_weekly_gini(
    rows: Sequence[tuple[date, int, bool | None]], min_bads: int
) -> list[WeeklyGini]:
    """Weeks of (business date, score, bad or None while not matured), oldest first."""
    weeks: dict[date, list[tuple[int, bool | None]]] = {}
    for business_date, score, bad in rows:
        monday = business_date - timedelta(days=business_date.weekday())
        weeks.setdefault(monday, []).append((score, bad))
    result = []
    for monday in sorted(weeks):
        matured = [(score, bad) for score, bad in weeks[monday] if bad is not None]
        bads = sum(1 for _, bad in matured if bad)
        gini = None
        if bads >= min_bads:
            gini = compute_gini([s for s, _ in matured], [bool(b) for _, b in matured])
        result.append(WeeklyGini(monday, len(weeks[monday]), len(matured), bads, gini))
    return result


def compute_alerts(
    report: StabilityReport,
    weeks: Sequence[WeeklyGini],
    training_gini: float,
    thresholds: StabilityThresholds,
) -> list[StabilityAlert]:
    """Every PSI above its threshold and every matured week whose Gini fell too far."""
    alerts = []
    if report.total.psi > thresholds.psi_alert:
        alerts.append(StabilityAlert("psi", "score", report.total.psi, thresholds.psi_alert))
    for name in sorted(report.characteristics):
        psi = report.characteristics[name].psi
        if psi > thresholds.psi_alert:
            alerts.append(StabilityAlert("psi", name, psi, thresholds.psi_alert))
    floor = training_gini - thresholds.gini_drop_alert
    for week in weeks:
        if week.gini is not None and week.gini < floor:
            alerts.append(StabilityAlert("gini", week.week_start.isoformat(), week.gini, floor))
    return alerts
