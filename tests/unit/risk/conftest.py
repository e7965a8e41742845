"""Trained scorecards on the shipped data sets, built once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

import node_api.risk
from node_api.risk.training import TrainingResult, train_scorecard

DATA_DIR = Path(node_api.risk.__file__).parent / "data"
GERMAN_CSV = DATA_DIR / "german_credit.csv"
CREDIT_DATA_CSV = DATA_DIR / "credit_data.csv"


@pytest.fixture(scope="session")
def german_training() -> TrainingResult:
    return train_scorecard(GERMAN_CSV, "creditability", "bad")


@pytest.fixture(scope="session")
def credit_data_training() -> TrainingResult:
    return train_scorecard(CREDIT_DATA_CSV, "Status", "bad", ignore=("rownames",))
