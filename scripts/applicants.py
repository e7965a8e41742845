"""Synthetic applicants' credit characteristics, shared by the demo and the benchmarks.

The keys and values are those of the German credit data set the scorecard is trained
on (`node_api.risk`); no real person is described.
"""

from __future__ import annotations

from node_api.risk.samples import APPROVED_CHARACTERISTICS

Characteristics = dict[str, str | int]
"""An application's `characteristics` object: category names and whole numbers."""

GOOD_PROFILE: Characteristics = dict(APPROVED_CHARACTERISTICS)
"""An applicant the scorecard approves."""
