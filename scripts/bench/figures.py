"""The type of a benchmark's figures: what `creditnet bench` prints as one JSON object."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

Figure = int | float | str | bool | None | Sequence["Figure"] | Mapping[str, "Figure"]
"""One JSON value: a number (units in its key), a flag, a name, or a group of figures."""

Figures = dict[str, Figure]
"""A benchmark's result, keyed by figure name."""


def percentile(ordered: Sequence[float], share: float) -> float:
    """The `share` percentile (0..1) of ascending `ordered` values, to 0.01; 0 if none."""
    if not ordered:
        return 0.0
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 2)
