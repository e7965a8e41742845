"""Decision simulation: stored applications replayed under a candidate policy, through
`creditnet risk simulate` and `POST /v1/risk/simulations`, on a hand-built scenario.

Under the default policy (German card): good profiles are approved, borderline ones go
to review and bad ones are declined. The candidate approves from the borderline score
up, and wants a total limit of at least 3 000 yuan, which the low-income good applicant
(2 400 yuan) no longer gets.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from node_api.cli import app as cli_app
from node_api.kernel.db import Database
from node_api.onboarding.policies import DEFAULT_POLICY
from node_api.risk.scorecard import Scorecard
from tests.integration.onboarding.onboarding_helpers import (
    BAD_PROFILE,
    BORDERLINE_PROFILE,
    GOOD_PROFILE,
    PRODUCT,
    Api,
    application_body,
    count_rows,
    new_applicant,
)

HIGH_INCOME_FEN = 1_500_000
LOW_INCOME_FEN = 60_000
GOOD_LIMIT_FEN = 6_000_000
"""Score 620: the top band, 4 x income capped at 100 000 yuan."""
LOW_INCOME_LIMIT_FEN = 240_000
BORDERLINE_LIMIT_FEN = 500_000
"""The bottom band: 1 x income capped at 5 000 yuan."""
SCENARIO = (
    [(GOOD_PROFILE, HIGH_INCOME_FEN)] * 3
    + [(GOOD_PROFILE, LOW_INCOME_FEN)]
    + [(BORDERLINE_PROFILE, HIGH_INCOME_FEN)] * 2
    + [(BAD_PROFILE, HIGH_INCOME_FEN)] * 2
)


def candidate_policy() -> dict[str, Any]:
    borderline = Scorecard.load_packaged("german").score(BORDERLINE_PROFILE).score
    policy = DEFAULT_POLICY.model_dump(mode="json")
    policy["risk"]["approve_score_min"] = borderline
    policy["risk"]["total_limit_fen_min"] = 300_000
    return policy


def apply_scenario(api: Api) -> list[dict[str, Any]]:
    answers = []
    for n, (profile, income_fen) in enumerate(SCENARIO):
        body = application_body(
            new_applicant(40_000 + n),
            profile=profile,
            monthly_income_fen=income_fen,
            ip=f"192.0.2.{n}",
        )
        answers.append(api.apply(body).json())
    decisions = [answer["decision"] for answer in answers]
    assert decisions == ["approved"] * 4 + ["review"] * 2 + ["declined"] * 2
    assert [a["limits"]["total"] for a in answers[:4]] == [GOOD_LIMIT_FEN] * 3 + [
        LOW_INCOME_LIMIT_FEN
    ]
    return answers


def check_swap_set(report: dict[str, Any]) -> None:
    assert report["applications"] == len(SCENARIO)
    cells = report["swap_set"]
    counts = {name: cell["applications"] for name, cell in cells.items()}
    assert counts == {
        "approved_by_both": 3,
        "approved_by_old_only": 1,
        "approved_by_new_only": 2,
        "approved_by_neither": 2,
    }
    assert cells["approved_by_both"]["old_limit_total_fen"] == 3 * GOOD_LIMIT_FEN
    assert cells["approved_by_both"]["new_limit_total_fen"] == 3 * GOOD_LIMIT_FEN
    assert cells["approved_by_old_only"]["old_limit_total_fen"] == LOW_INCOME_LIMIT_FEN
    assert cells["approved_by_old_only"]["new_limit_total_fen"] == 0
    assert cells["approved_by_new_only"]["new_limit_total_fen"] == 2 * BORDERLINE_LIMIT_FEN
    old, new = report["old"], report["new"]
    assert (old["approved"], old["review"], old["declined"]) == (4, 2, 2)
    assert (new["approved"], new["review"], new["declined"]) == (5, 0, 3)
    assert old["approval_rate_bps"] == 5_000 and new["approval_rate_bps"] == 6_250
    assert old["approved_limit_total_fen"] == 3 * GOOD_LIMIT_FEN + LOW_INCOME_LIMIT_FEN
    assert new["approved_limit_total_fen"] == 3 * GOOD_LIMIT_FEN + 2 * BORDERLINE_LIMIT_FEN
    # The candidate approves riskier scores: its expected bad rate is higher.
    assert new["expected_bad_rate_bps"] > old["expected_bad_rate_bps"] > 0


def simulate(database: Database, *arguments: str) -> Result:
    env = {"CREDITNET_DATABASE_URL": database.url}
    command = ["risk", "simulate", "--product", PRODUCT, *arguments]
    return CliRunner().invoke(cli_app, command, env=env)


def test_simulate_prints_the_swap_set_of_a_policy_file_and_changes_nothing(
    api: Api, database: Database, tmp_path: Path
) -> None:
    apply_scenario(api)
    policy_file = tmp_path / "candidate.json"
    policy_file.write_text(json.dumps(candidate_policy()), encoding="utf-8")
    with database.engine.connect() as conn:
        before = count_rows(conn)
    dates = ["--from", "2025-06-01", "--to", "2025-06-30"]
    result = simulate(database, "--policy", str(policy_file), *dates)
    assert result.exit_code == 0, result.output
    check_swap_set(json.loads(result.stdout))
    table = simulate(database, "--policy", str(policy_file), *dates, "--table")
    assert table.exit_code == 0, table.output
    rows = {line[:22].strip(): line[22:].split() for line in table.stdout.splitlines()}
    assert rows["approved by both"][0] == "3" and rows["approved by old only"][0] == "1"
    assert rows["approved by new only"][0] == "2" and rows["approved by neither"][0] == "2"
    with database.engine.connect() as conn:
        assert count_rows(conn) == before


def test_simulate_outside_the_dates_replays_nothing(api: Api, database: Database) -> None:
    apply_scenario(api)
    result = simulate(database, "--policy", "1", "--from", "2025-07-01", "--to", "2025-07-31")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["applications"] == 0 and report["old"]["approval_rate_bps"] is None


def test_the_api_simulates_a_stored_policy_version(api: Api) -> None:
    apply_scenario(api)
    published = api.client.post(
        f"/v1/risk/policies/{PRODUCT}", json=candidate_policy(), headers=api.headers("admin")
    )
    assert published.status_code == 200, published.text
    body = {
        "product_code": PRODUCT,
        "from_date": "2025-06-30",
        "to_date": "2025-06-30",
        "policy_version": published.json()["version"],
    }
    response = api.client.post("/v1/risk/simulations", json=body, headers=api.headers("auditor"))
    assert response.status_code == 200, response.text
    check_swap_set(response.json())


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"policy_version": 9}, "policy_version"),
        ({"policy": {**candidate_policy(), "card": "nope"}}, "card"),
    ],
)
def test_the_api_refuses_a_candidate_it_does_not_have(
    api: Api, body: dict[str, Any], field: str
) -> None:
    request = {"product_code": PRODUCT, "from_date": "2025-06-01", "to_date": "2025-06-30"}
    response = api.client.post(
        "/v1/risk/simulations", json={**request, **body}, headers=api.headers("admin")
    )
    assert response.status_code == 422
    assert response.json()["field"] == field
