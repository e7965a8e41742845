"""A clean history audits green, and the report shows what happened."""

from __future__ import annotations

import pytest

from tests.integration.audit.conftest import AuditFn
from tests.integration.audit.scenario import Scenario, failed_ids

pytestmark = pytest.mark.chain


def test_clean_history_passes_every_check(scenario: Scenario, audit: AuditFn) -> None:
    report = audit(scenario)
    assert failed_ids(report) == set(), [c.message for c in report.failed_checks()]
    assert report.passed
    assert report.summary["agreements"] == 6
    assert report.summary["cycles"] == 3
    assert report.summary["line_states"] == 2
