"""A product's stability through the API and the metrics: PSI of the active model, the
weekly Gini of the lines it opened once outcomes mature, and the alerts thresholds raise."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Connection

import node_api.onboarding.stability as stability
from node_api.auth.keys import Role, create_api_key
from node_api.http.app import create_app
from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from node_api.onboarding.challenger_report import EarlyOutcome
from node_api.onboarding.tables import application_table
from tests.integration.onboarding.conftest import PEPPER
from tests.integration.onboarding.onboarding_helpers import (
    AS_OF,
    BAD_PROFILE,
    BORDERLINE_PROFILE,
    GOOD_PROFILE,
    PRODUCT,
    Api,
    application_body,
    setup_books,
)

MONDAY = date(2025, 6, 30)  # AS_OF is a Monday


@pytest.fixture
def strict_api(database: Database, tmp_path: Path) -> Iterator[Api]:
    """The onboarding API with thresholds that any live population crosses."""
    setup_books(database)
    with database.session() as session:
        keys = {
            "app": create_api_key(session, Role.LENDER_APP, pepper=PEPPER),
            "admin": create_api_key(session, Role.LENDER_ADMIN, pepper=PEPPER),
        }
    settings = Settings(
        data_dir=tmp_path, risk_psi_alert=0.01, risk_gini_drop_alert=0.05, risk_gini_min_bads=1
    )
    with TestClient(create_app(settings, database=database)) as client:
        yield Api(client, keys)


def _apply(api: Api, profiles: Sequence[Mapping[str, object]]) -> None:
    for profile in profiles:
        response = api.apply(application_body(profile=dict(profile)))
        assert response.status_code == 201, response.text


def test_without_matured_outcomes_there_is_psi_and_no_gini(api: Api) -> None:
    _apply(api, [GOOD_PROFILE, GOOD_PROFILE, BAD_PROFILE])
    response = api.get(f"/v1/risk/monitoring/{PRODUCT}")
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["as_of"] == AS_OF.isoformat()
    assert report["psi"]["total"]["live_count"] == 3
    assert set(report["psi"]["characteristics"]) >= set(GOOD_PROFILE)
    assert report["training_gini"] > 0.5
    assert report["weekly_gini"] == [
        {"week_start": MONDAY.isoformat(), "lines": 2, "matured": 0, "bads": 0, "gini": None}
    ]
    assert [a for a in report["alerts"] if a["kind"] == "gini"] == []


def test_a_matured_week_ranking_worse_than_training_raises_a_gini_alert_and_metrics(
    strict_api: Api, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    _apply(strict_api, [GOOD_PROFILE, BORDERLINE_PROFILE, GOOD_PROFILE])
    with database.engine.connect() as conn:
        assert len(_opened_lines(conn)) == 2  # the borderline applicant is in review

    def outcomes(
        _conn: Connection, line_ids: Sequence[int], _as_of: date
    ) -> dict[int, EarlyOutcome]:
        # Every line defaults but the first: the model's ranking tells them apart no better.
        return {line_id: EarlyOutcome(line_id != min(line_ids), None) for line_id in line_ids}

    monkeypatch.setattr(stability, "fetch_early_outcomes", outcomes)
    report = strict_api.get(f"/v1/risk/monitoring/{PRODUCT}").json()
    [week] = report["weekly_gini"]
    assert (week["lines"], week["matured"], week["bads"]) == (2, 2, 1)
    assert week["gini"] == 0.0  # both approved applicants scored the same
    kinds = {(alert["kind"], alert["subject"]) for alert in report["alerts"]}
    assert ("gini", MONDAY.isoformat()) in kinds
    assert ("psi", "score") in kinds
    metrics = strict_api.client.get("/metrics").text
    assert f'creditnet_risk_gini_weekly{{product_code="{PRODUCT}"}} 0.0' in metrics
    assert f'creditnet_risk_alerts{{kind="gini",product_code="{PRODUCT}"}} 1.0' in metrics
    assert f'creditnet_risk_psi{{characteristic="score",product_code="{PRODUCT}"}}' in metrics
    assert 'creditnet_metrics_scrape_errors{part="risk"}' not in metrics


def _opened_lines(conn: Connection) -> list[int]:
    table = application_table
    rows = conn.execute(select(table.c.credit_line_id).where(table.c.credit_line_id.is_not(None)))
    return [int(line_id) for line_id in rows.scalars()]
