"""A boosted model a risk team trained, in production: registered through the API,
activated for a product, deciding applications with its trees, replayed exactly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from node_api.onboarding.policies import DEFAULT_POLICY
from node_api.risk.gbm_fit import GbmSettings
from node_api.risk.gbm_training import GbmTrainingResult, GbmTrainingSettings, train_gbm
from node_api.risk.samples import APPROVED_CHARACTERISTICS
from node_api.risk.scorecard import Scorecard
from tests.integration.onboarding.onboarding_helpers import (
    BAD_PROFILE,
    GOOD_PROFILE,
    Api,
    application_body,
)
from tests.integration.risk.test_model_registry_http import activate, register


@pytest.fixture(scope="module")
def trained_gbm(tmp_path_factory: pytest.TempPathFactory) -> GbmTrainingResult:
    """A small boosted model on the German slice's columns the sample applicant fills."""
    from tests.integration.risk.conftest import GERMAN_CSV

    header = GERMAN_CSV.read_text(encoding="utf-8").splitlines()[0].split(",")
    ignore = [name for name in header if name not in APPROVED_CHARACTERISTICS]
    ignore.remove("creditability")
    path: Path = tmp_path_factory.mktemp("gbm") / "german.csv"
    path.write_bytes(GERMAN_CSV.read_bytes())
    gbm = GbmSettings(rounds=30, learning_rate=0.1)
    settings = GbmTrainingSettings(gbm=gbm, folds=2, compare=False)
    return train_gbm(path, "creditability", "bad", ignore, settings=settings)


def _card(trained: GbmTrainingResult) -> dict[str, Any]:
    card: dict[str, Any] = json.loads(trained.card.to_json())
    return card


def test_a_trained_gbm_is_registered_activated_and_decides_with_its_trees(
    api: Api, trained_gbm: GbmTrainingResult
) -> None:
    registered = register(api, _card(trained_gbm), label="german-gbm")
    assert registered.status_code == 200, registered.text
    version = registered.json()["version"]
    assert registered.json()["model_id"] == trained_gbm.card.model_id
    assert activate(api, version).status_code == 200
    served = Scorecard(trained_gbm.card)
    cutoff = DEFAULT_POLICY.risk
    for profile, decision in ((GOOD_PROFILE, "approved"), (BAD_PROFILE, "declined")):
        characteristics = {k: v for k, v in profile.items() if k in APPROVED_CHARACTERISTICS}
        response = api.apply(application_body(profile=characteristics))
        assert response.status_code == 201, response.text
        decided = response.json()
        expected = served.score(characteristics)
        assert decided["model_id"] == trained_gbm.card.model_id
        assert decided["score"] == expected.score
        assert decided["decision"] == decision
        if decision == "approved":
            assert expected.score >= cutoff.approve_score_min
        else:
            assert expected.score < cutoff.decline_score_below
            assert decided["reason_codes"][0] == "SCORE_BELOW_CUTOFF"
            assert [r["code"] for r in decided["score_reasons"]] == [
                r.code for r in expected.reasons
            ]
        replay = api.get(f"/v1/applications/{decided['application_id']}/replay").json()
        assert replay["matches"] is True


def test_a_gbm_card_with_an_edited_tree_is_refused_at_upload(
    api: Api, trained_gbm: GbmTrainingResult
) -> None:
    card = _card(trained_gbm)
    card["gbm"]["trees"][0]["threshold"][0] = 1e9
    response = register(api, card)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "card"
