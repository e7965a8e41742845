"""`GET /v1/risk/monitoring`: PSI of live applications vs the card's training data."""

from __future__ import annotations

import pytest

from node_api.risk.monitoring import LiveCounts, PsiResult, compute_stability_report
from node_api.risk.scorecard import Scorecard
from tests.integration.onboarding.onboarding_helpers import (
    BAD_PROFILE,
    BORDERLINE_PROFILE,
    GOOD_PROFILE,
    Api,
    application_body,
)

PROFILES = [GOOD_PROFILE, BAD_PROFILE, BORDERLINE_PROFILE, {}, {**GOOD_PROFILE, "age_in_years": 23}]


def _psi_json(result: PsiResult) -> dict[str, object]:
    return {"psi": round(result.psi, 6), "band": result.band.value, "live_count": result.live_count}


def test_report_equals_psi_of_the_scored_applications(api: Api) -> None:
    card = Scorecard.load_packaged("german")
    expected = LiveCounts.empty(card.card)
    for profile in PROFILES * 2:
        assert api.apply(application_body(profile=profile)).status_code == 201
        expected.add(card.score(profile))
    response = api.get("/v1/risk/monitoring", "auditor")
    assert response.status_code == 200
    [report] = response.json()["cards"]
    want = compute_stability_report(card.card, expected)
    assert report == {
        "card": "german",
        "model_id": want.model_id,
        "total": _psi_json(want.total),
        "characteristics": {n: _psi_json(r) for n, r in want.characteristics.items()},
    }
    assert report["total"]["live_count"] == 10
    assert report["total"]["band"] == "shift"  # five profiles, far from the training mix


def test_a_card_without_live_applications_reports_zero(api: Api) -> None:
    [report] = api.get("/v1/risk/monitoring?card=credit_data").json()["cards"]
    assert report["total"] == {"psi": 0.0, "band": "stable", "live_count": 0}
    assert api.get("/v1/risk/monitoring").json() == {"cards": []}


@pytest.mark.parametrize("role", ["app"])
def test_RevertWhen_the_caller_may_not_read_monitoring(api: Api, role: str) -> None:
    assert api.get("/v1/risk/monitoring", role).status_code == 403
