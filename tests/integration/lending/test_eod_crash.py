"""Crashes during end of day, on both databases: a run killed at a step/batch boundary
(a real SIGKILL of a child process, or an exception in process) and then run again ends
with exactly what a run that never crashed writes."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from node_api.kernel.db import Database
from node_api.lending.eod import EodContext, run_eod_through
from tests.integration.lending.eod_helpers import cloned, seed_billed_lines, snapshot

OPENED = date(2025, 3, 1)
THROUGH = date(2025, 4, 6)
BATCH_LINES = 2
CHILD = Path(__file__).with_name("eod_crash_child.py")
ROOT = Path(__file__).resolve().parents[3]


class InjectedFault(Exception):
    pass


def _seed(database: Database) -> None:
    """Seven lines billed on the 5th with purchases; three pay their bill in full, two
    pay the minimum, two pay nothing (so every step has work in several batches)."""
    seed_billed_lines(database, OPENED, [f"c-{i}" for i in range(7)])


def _clean(database: Database) -> dict[str, object]:
    with cloned(database) as twin:
        run_eod_through(twin, THROUGH, ctx=EodContext(batch_lines=BATCH_LINES))
        return snapshot(twin)


@pytest.mark.parametrize(
    ("step", "batch_no", "point"),
    [
        ("due", 2, "before_commit"),
        ("accrue", 1, "after_commit"),
        ("delinquency", 2, "before_commit"),
    ],
)
def test_eod_killed_by_sigkill_and_rerun_equals_a_clean_run(
    database: Database, step: str, batch_no: int, point: str
) -> None:
    _seed(database)
    expected = _clean(database)
    database.dispose()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    args = [database.url, THROUGH.isoformat(), step, str(batch_no), point, str(BATCH_LINES)]
    child = subprocess.run(
        [sys.executable, str(CHILD), *args], env=env, cwd=ROOT, capture_output=True, timeout=240
    )
    assert child.returncode == -9, child.stderr.decode()[-2_000:]
    assert snapshot(database) != expected
    run_eod_through(database, THROUGH, ctx=EodContext(batch_lines=BATCH_LINES))
    assert snapshot(database) == expected


@pytest.mark.parametrize(
    ("step", "batch_no", "point"),
    [("bill", 1, "after_commit"), ("late_fee", 1, "before_commit"), ("due", 1, "after_commit")],
)
def test_eod_failing_at_a_batch_boundary_resumes_without_posting_twice(
    database: Database, step: str, batch_no: int, point: str
) -> None:
    _seed(database)
    expected = _clean(database)

    def fail(at: str, at_step: str, at_batch: int) -> None:
        if (at, at_step, at_batch) == (point, step, batch_no):
            raise InjectedFault(f"{point} {step} {batch_no}")

    with pytest.raises(InjectedFault):
        run_eod_through(
            database, THROUGH, ctx=EodContext(batch_lines=BATCH_LINES, on_boundary=fail)
        )
    run_eod_through(database, THROUGH, ctx=EodContext(batch_lines=BATCH_LINES))
    assert snapshot(database) == expected
