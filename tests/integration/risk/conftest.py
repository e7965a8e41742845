"""Fixtures of the decisioning tests: the onboarding API, and a card trained for them."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

import node_api.risk
from node_api.risk.training import TrainingResult, TrainingSettings, train_scorecard
from tests.integration.onboarding.conftest import api, settings

__all__ = ["api", "settings"]

GERMAN_CSV = Path(node_api.risk.__file__).parent / "data" / "german_credit.csv"
TRAINING_ROWS = 600
"""A slice of the German data: fast to fit, and a card unlike the packaged one."""


@pytest.fixture(scope="session")
def training_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first `TRAINING_ROWS` rows of the shipped German credit data."""
    path = tmp_path_factory.mktemp("training") / "german_slice.csv"
    with GERMAN_CSV.open(newline="", encoding="utf-8") as source:
        rows = list(csv.reader(source))[: TRAINING_ROWS + 1]
    with path.open("w", newline="", encoding="utf-8") as target:
        csv.writer(target).writerows(rows)
    return path


@pytest.fixture(scope="session")
def trained(training_csv: Path) -> TrainingResult:
    """A card freshly trained on the slice (2 folds: seconds, not minutes)."""
    return train_scorecard(training_csv, "creditability", "bad", settings=TrainingSettings(folds=2))
