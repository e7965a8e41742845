"""Population stability of live applications against the card's training distribution.

PSI = sum over bins of (live share - training share) * ln(live share / training
share). Each characteristic gets its own PSI; the total is the PSI of the score
distribution over the card's score bands (the system stability index). Bands:
below 0.1 stable, below 0.25 watch, otherwise shift. Live counts are plain
integers per bin, so the node can keep them in a table and add them up in SQL.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
