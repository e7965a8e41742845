"""Champion/challenger through the API: deterministic routing by applicant, both arms
scored and stored on every application, and both reported."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from node_api.http.services import services_of
from node_api.kernel.db import Database
from node_api.onboarding.pii import LookupKind
from node_api.onboarding.policies import DEFAULT_POLICY
from node_api.risk.challenger import compute_bucket
from node_api.risk.registry_tables import decision_arm_table
from node_api.risk.scorecard import Scorecard
from node_api.risk.training import TrainingResult
from tests.integration.onboarding.onboarding_helpers import (
    BAD_PROFILE,
    GOOD_PROFILE,
    PRODUCT,
    Api,
    application_body,
    new_applicant,
)

EXPERIMENT = "slice-card"
SHARE_BPS = 3_000
APPLICANTS = 100


def _start_test(api: Api, trained: TrainingResult) -> int:
    """Register the trained card and run it as the challenger of the default policy."""
    card = json.loads(trained.card.to_json())
    registered = api.client.post(
        "/v1/risk/models", json={"card": card}, headers=api.headers("admin")
    )
    assert registered.status_code == 200, registered.text
    policy = DEFAULT_POLICY.model_dump(mode="json")
    policy["challenger"] = {
        "experiment": EXPERIMENT,
        "share_bps": SHARE_BPS,
        "model_version": registered.json()["version"],
    }
    published = api.client.post(
        f"/v1/risk/policies/{PRODUCT}", json=policy, headers=api.headers("admin")
    )
    assert published.status_code == 200, published.text
    version: int = published.json()["version"]
    return version


def _expected_arm(api: Api, id_number: str) -> str:
    vault = services_of(api.client.app).onboarding.current().vault
    bucket = compute_bucket(EXPERIMENT, vault.lookup_hash(LookupKind.ID_NUMBER, id_number))
    return "challenger" if bucket < SHARE_BPS else "champion"


def _arms(database: Database) -> dict[str, dict[str, Any]]:
    """Stored arms by application id, then arm name."""
    arms: dict[str, dict[str, Any]] = {}
    with database.engine.connect() as conn:
        for row in conn.execute(select(decision_arm_table)):
            arms.setdefault(row.application_id, {})[row.arm] = dict(row._mapping)
    return arms


def test_routing_is_deterministic_both_arms_are_stored_and_reported(
    api: Api, trained: TrainingResult, database: Database
) -> None:
    policy_version = _start_test(api, trained)
    champion, challenger = Scorecard.load_packaged("german"), Scorecard(trained.card)
    applicants = [new_applicant(10_000 + n) for n in range(APPLICANTS)]
    decided: dict[str, tuple[str, dict[str, Any]]] = {}
    for n, applicant in enumerate(applicants):
        profile = BAD_PROFILE if n % 5 == 0 else GOOD_PROFILE
        body = application_body(applicant, profile=profile, ip=f"198.51.{n // 200}.{n % 200}")
        response = api.apply(body)
        assert response.status_code == 201, response.text
        decided[response.json()["application_id"]] = (applicant["id_number"], response.json())

    arms = _arms(database)
    assert set(arms) == set(decided)
    challenger_count = 0
    for application_id, (id_number, answer) in decided.items():
        stored = arms[application_id]
        assert set(stored) == {"champion", "challenger"}
        deciding = [name for name, row in stored.items() if row["deciding"]]
        assert deciding == [_expected_arm(api, id_number)]
        challenger_count += deciding == ["challenger"]
        assert stored["champion"]["model_id"] == champion.model_id
        assert stored["challenger"]["model_id"] == challenger.model_id
        assert stored["challenger"]["model_version"] == 1
        assert {row["policy_version"] for row in stored.values()} == {policy_version}
        assert stored[deciding[0]]["score"] == answer["score"]
        assert stored[deciding[0]]["decision"] == answer["decision"]
        assert answer["model_id"] == stored[deciding[0]]["model_id"]
    assert abs(challenger_count - APPLICANTS * SHARE_BPS // 10_000) <= 12

    report = api.get(f"/v1/risk/champion-challenger/{PRODUCT}", "auditor")
    assert report.status_code == 200, report.text
    by_arm = {arm["arm"]: arm for arm in report.json()["arms"]}
    assert report.json()["experiments"] == [EXPERIMENT]
    assert by_arm["challenger"]["decided"]["applications"] == challenger_count
    assert by_arm["champion"]["decided"]["applications"] == APPLICANTS - challenger_count
    for arm in by_arm.values():
        assert arm["scored"]["applications"] == APPLICANTS
        assert len(arm["scored"]["score_deciles"]) == 11
        assert arm["first_payment_default"] == {"matured": 0, "events": 0, "rate_bps": None}
        approved = arm["decided"]["approved"]
        assert arm["lines_opened"] == approved
    approved_by_challenger = sum(
        1
        for application_id, (_, answer) in decided.items()
        if arms[application_id]["challenger"]["deciding"] and answer["decision"] == "approved"
    )
    assert by_arm["challenger"]["decided"]["approved"] == approved_by_challenger


def test_an_applicant_keeps_the_arm_on_every_application(
    api: Api, trained: TrainingResult, database: Database
) -> None:
    _start_test(api, trained)
    applicants = [new_applicant(20_000 + n) for n in range(12)]
    first: dict[str, str] = {}
    second: dict[str, str] = {}
    for round_answers in (first, second):
        for n, applicant in enumerate(applicants):
            body = application_body(applicant, profile=BAD_PROFILE, ip=f"203.0.113.{n}")
            answer = api.apply(body).json()
            assert answer["decision"] == "declined" and not answer["existing_customer"]
            round_answers[applicant["id_number"]] = answer["application_id"]
    arms = _arms(database)

    def deciding(application_id: str) -> str:
        return next(name for name, row in arms[application_id].items() if row["deciding"])

    for id_number in first:
        assert deciding(first[id_number]) == deciding(second[id_number])
    assert {deciding(a) for a in first.values()} == {"champion", "challenger"}


def test_an_application_the_challenger_decided_replays(
    api: Api, trained: TrainingResult, database: Database
) -> None:
    _start_test(api, trained)
    n = next(n for n in range(30_000, 30_100) if _by_challenger(api, n))
    answer = api.apply(application_body(new_applicant(n))).json()
    assert answer["model_id"] == trained.card.model_id
    replay = api.get(f"/v1/applications/{answer['application_id']}/replay").json()
    assert replay["matches"] is True, replay


def _by_challenger(api: Api, number: int) -> bool:
    return _expected_arm(api, new_applicant(number)["id_number"]) == "challenger"


def test_a_challenger_naming_an_unknown_policy_version_is_refused(api: Api) -> None:
    policy = DEFAULT_POLICY.model_dump(mode="json")
    policy["challenger"] = {"share_bps": 5_000, "policy_version": 9}
    response = api.client.post(
        f"/v1/risk/policies/{PRODUCT}", json=policy, headers=api.headers("admin")
    )
    assert response.status_code == 422
    assert response.json()["field"] == "challenger.policy_version"


def test_a_policy_version_challenger_decides_under_its_own_cut_offs(
    api: Api, database: Database
) -> None:
    strict = DEFAULT_POLICY.model_dump(mode="json")
    strict["risk"]["approve_score_min"] = 700
    headers = api.headers
    first = api.client.post(f"/v1/risk/policies/{PRODUCT}", json=strict, headers=headers("admin"))
    assert first.json()["version"] == 1
    running = DEFAULT_POLICY.model_dump(mode="json")
    running["challenger"] = {"experiment": "strict", "share_bps": 10_000, "policy_version": 1}
    second = api.client.post(f"/v1/risk/policies/{PRODUCT}", json=running, headers=headers("admin"))
    assert second.status_code == 200, second.text

    answer = api.apply(application_body(new_applicant(50_000))).json()
    assert answer["decision"] == "review" and answer["reason_codes"][0] == "SCORE_BORDERLINE"
    stored = _arms(database)[answer["application_id"]]
    assert stored["challenger"]["deciding"] and stored["challenger"]["policy_version"] == 1
    assert stored["champion"]["decision"] == "approved"
    assert stored["champion"]["policy_version"] == second.json()["version"]
    detail = api.get(f"/v1/applications/{answer['application_id']}").json()
    assert detail["policy_version"] == 1
    replay = api.get(f"/v1/applications/{answer['application_id']}/replay").json()
    assert replay["matches"] is True, replay
