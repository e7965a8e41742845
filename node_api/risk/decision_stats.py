"""What risk teams compare decisions by: rates, score deciles, expected bad rates, swap sets.

Rates are integers in basis points, rounded half-even (`div_half_even`); a rate of
nothing (no applications, nothing matured) is None, not zero. Score deciles are the
nearest-rank percentiles 0, 10, ..., 100 of integer scores, so each is a score that
occurred. A score's probability of going bad inverts the card's PDO scaling
(score = offset + factor * ln(good:bad odds)); an expected bad rate is the mean of
those probabilities over the approved applications, in basis points rounded to nearest.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from node_api.kernel.money import BPS_DENOMINATOR, Fen, div_ceil, div_half_even
from node_api.risk.card import CardScaling

DECILE_COUNT = 10


def compute_rate_bps(events: int, population: int) -> int | None:
    """`events / population` in basis points, half-even; None for an empty population."""
    if population == 0:
        return None
    return div_half_even(events * BPS_DENOMINATOR, population)


def compute_deciles(scores: Sequence[int]) -> list[int]:
    """Nearest-rank percentiles 0, 10, ..., 100 (11 scores); empty for no scores."""
    ordered = sorted(scores)
    if not ordered:
        return []
    count = len(ordered)
    return [
        ordered[max(div_ceil(step * count, DECILE_COUNT) - 1, 0)]
        for step in range(DECILE_COUNT + 1)
    ]


def compute_bad_probability(scaling: CardScaling, score: int) -> float:
    """The probability of going bad that a card's scaling assigns to `score`."""
    log_odds_good = (score - scaling.offset) / scaling.factor
    if log_odds_good > 700:  # exp overflows; the probability is 0 to double precision
        return 0.0
    return 1.0 / (1.0 + math.exp(log_odds_good))


def compute_mean_rate_bps(probabilities: Sequence[float]) -> int | None:
    """The mean of probabilities in basis points, rounded to nearest; None if empty."""
    if not probabilities:
        return None
    return round(math.fsum(probabilities) / len(probabilities) * BPS_DENOMINATOR)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One application's decision on one side of a comparison."""

    approved: bool
    in_review: bool
    total_limit_fen: Fen
    """Zero unless approved or in review."""
    bad_probability: float


class SwapCell(StrEnum):
    APPROVED_BY_BOTH = "approved_by_both"
    APPROVED_BY_OLD_ONLY = "approved_by_old_only"
    APPROVED_BY_NEW_ONLY = "approved_by_new_only"
    APPROVED_BY_NEITHER = "approved_by_neither"


def get_swap_cell(old: Outcome, new: Outcome) -> SwapCell:
    if old.approved:
        return SwapCell.APPROVED_BY_BOTH if new.approved else SwapCell.APPROVED_BY_OLD_ONLY
    return SwapCell.APPROVED_BY_NEW_ONLY if new.approved else SwapCell.APPROVED_BY_NEITHER


@dataclass(frozen=True, slots=True)
class SwapCellSummary:
    applications: int
    old_limit_total_fen: Fen
    """Total limits the old decisions granted these applications (approved ones only)."""
    new_limit_total_fen: Fen
    old_expected_bad_rate_bps: int | None
    """Mean bad probability of these applications by the old side's scores."""
    new_expected_bad_rate_bps: int | None


@dataclass(frozen=True, slots=True)
class SideSummary:
    applications: int
    approved: int
    review: int
    declined: int
    approval_rate_bps: int | None
    expected_bad_rate_bps: int | None
    """Mean bad probability of the approved applications."""
    approved_limit_total_fen: Fen


@dataclass(frozen=True, slots=True)
class SwapSetSummary:
    applications: int
    cells: dict[SwapCell, SwapCellSummary]
    old: SideSummary
    new: SideSummary


def _approved_limit_fen(outcomes: Iterable[Outcome]) -> Fen:
    return Fen(sum(outcome.total_limit_fen for outcome in outcomes if outcome.approved))


def summarize_side(outcomes: Sequence[Outcome]) -> SideSummary:
    approved = [outcome for outcome in outcomes if outcome.approved]
    review = sum(1 for outcome in outcomes if outcome.in_review)
    return SideSummary(
        applications=len(outcomes),
        approved=len(approved),
        review=review,
        declined=len(outcomes) - len(approved) - review,
        approval_rate_bps=compute_rate_bps(len(approved), len(outcomes)),
        expected_bad_rate_bps=compute_mean_rate_bps([o.bad_probability for o in approved]),
        approved_limit_total_fen=_approved_limit_fen(approved),
    )


def summarize_swap_set(pairs: Sequence[tuple[Outcome, Outcome]]) -> SwapSetSummary:
    """The swap set of (old, new) outcome pairs, with each side's summary."""
    by_cell: dict[SwapCell, list[tuple[Outcome, Outcome]]] = {cell: [] for cell in SwapCell}
    for old, new in pairs:
        by_cell[get_swap_cell(old, new)].append((old, new))
    cells = {
        cell: SwapCellSummary(
            applications=len(items),
            old_limit_total_fen=_approved_limit_fen(old for old, _new in items),
            new_limit_total_fen=_approved_limit_fen(new for _old, new in items),
            old_expected_bad_rate_bps=compute_mean_rate_bps([o.bad_probability for o, _ in items]),
            new_expected_bad_rate_bps=compute_mean_rate_bps([n.bad_probability for _, n in items]),
        )
        for cell, items in by_cell.items()
    }
    return SwapSetSummary(
        applications=len(pairs),
        cells=cells,
        old=summarize_side([old for old, _new in pairs]),
        new=summarize_side([new for _old, new in pairs]),
    )
