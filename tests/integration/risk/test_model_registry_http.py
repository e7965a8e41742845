"""A risk team's own card in production: registered, activated for a product, deciding
applications, with the activation trail and replay intact."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from node_api.risk.card import compute_data_fingerprint
from node_api.risk.scorecard import Scorecard
from node_api.risk.training import TrainingResult
from tests.integration.onboarding.onboarding_helpers import (
    BAD_PROFILE,
    GOOD_PROFILE,
    PRODUCT,
    Api,
    application_body,
)


def register(api: Api, card: dict[str, Any], **extra: Any) -> Any:
    return api.client.post(
        "/v1/risk/models", json={"card": card, **extra}, headers=api.headers("admin")
    )


def activate(api: Api, version: int, product_code: str = PRODUCT) -> Any:
    return api.client.post(
        f"/v1/risk/models/{version}/activations",
        json={"product_code": product_code},
        headers=api.headers("admin"),
    )


def card_of(trained: TrainingResult) -> dict[str, Any]:
    card: dict[str, Any] = json.loads(trained.card.to_json())
    return card


def for_card(trained: TrainingResult, profile: dict[str, Any]) -> dict[str, Any]:
    """The profile's characteristics that the trained card reads."""
    names = {characteristic.name for characteristic in trained.card.characteristics}
    return {name: value for name, value in profile.items() if name in names}


def test_a_freshly_trained_card_is_registered_activated_and_decides_applications(
    api: Api, trained: TrainingResult, training_csv: Path
) -> None:
    response = register(api, card_of(trained), label="german-slice")
    assert response.status_code == 200, response.text
    model = response.json()
    assert model["version"] == 1 and model["created"] is True
    assert model["model_id"] == trained.card.model_id
    assert model["fingerprint_source"] == "data"
    assert model["data_fingerprint"] == compute_data_fingerprint(training_csv.read_bytes())
    assert model["metrics"]["auc"] == trained.card.metrics.auc
    assert model["characteristics"] == [c.name for c in trained.card.characteristics]

    again = register(api, card_of(trained), label="german-slice")
    assert again.json()["version"] == 1 and again.json()["created"] is False
    assert [m["version"] for m in api.get("/v1/risk/models", "auditor").json()["models"]] == [1]

    packaged_model_id = api.get(f"/v1/risk/cards/active?product_code={PRODUCT}").json()["model_id"]
    activated = activate(api, 1)
    assert activated.status_code == 200, activated.text
    trail = activated.json()["activation"]
    assert trail["model_version"] == 1 and trail["model_id"] == trained.card.model_id
    assert trail["previous_model_version"] is None
    assert trail["previous_model_id"] == packaged_model_id
    assert trail["activated_by"] == api.keys["admin"].split("_")[1]
    listed = api.get(f"/v1/risk/activations?product_code={PRODUCT}", "auditor").json()
    assert listed["activations"] == [trail]

    active = api.get(f"/v1/risk/cards/active?product_code={PRODUCT}", "app").json()
    assert active["card"] == "model_v1" and active["model_id"] == trained.card.model_id

    card = Scorecard(trained.card)
    for profile, decision in ((GOOD_PROFILE, "approved"), (BAD_PROFILE, "declined")):
        characteristics = for_card(trained, profile)
        decided = api.apply(application_body(characteristics=characteristics))
        assert decided.status_code == 201, decided.text
        body = decided.json()
        assert body["model_id"] == trained.card.model_id
        assert body["score"] == card.score(characteristics).score
        assert body["decision"] == decision
        replay = api.get(f"/v1/applications/{body['application_id']}/replay").json()
        assert replay["matches"] is True

    monitored = api.get("/v1/risk/monitoring", "auditor").json()["cards"]
    assert [(c["card"], c["model_id"]) for c in monitored] == [("model_v1", trained.card.model_id)]
    assert monitored[0]["total"]["live_count"] == 2
    one = api.get("/v1/risk/monitoring?card=model_v1", "auditor").json()["cards"]
    assert one[0]["model_id"] == trained.card.model_id

    unchanged = activate(api, 1).json()
    assert unchanged["activation"] is None
    assert unchanged["policy_version"] == activated.json()["policy_version"]


def test_characteristics_the_active_model_does_not_read_are_refused(
    api: Api, trained: TrainingResult
) -> None:
    register(api, card_of(trained))
    activate(api, 1)
    assert "telephone" not in {c.name for c in trained.card.characteristics}
    characteristics = {**for_card(trained, GOOD_PROFILE), "telephone": "none"}
    refused = api.apply(application_body(characteristics=characteristics))
    assert refused.status_code == 422
    assert refused.json()["field"] == "characteristics.telephone"
    assert refused.json()["code"] == "unknown_characteristic"


def test_a_tampered_card_is_refused(api: Api, trained: TrainingResult) -> None:
    card = card_of(trained)
    card["characteristics"][0]["bins"][0]["points"] += 5.0
    response = register(api, card)
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_card"
    assert api.get("/v1/risk/models").json()["models"] == []


def test_a_card_with_an_integer_beyond_64_bits_is_a_4xx_not_a_500(
    api: Api, trained: TrainingResult
) -> None:
    card = card_of(trained)
    card["characteristics"][0]["bins"][0]["points"] = 2**70
    response = register(api, card)
    assert response.status_code == 422
    assert api.get("/v1/risk/models").json()["models"] == []


def test_a_card_trained_on_other_data_than_stated_is_refused(
    api: Api, trained: TrainingResult
) -> None:
    response = register(api, card_of(trained), data_sha256="sha256:" + "0" * 64)
    assert response.status_code == 422
    assert response.json()["code"] == "data_fingerprint_mismatch"


def test_a_card_without_its_data_is_fingerprinted_by_its_content(
    api: Api, trained: TrainingResult
) -> None:
    card = trained.card
    notes = {key: value for key, value in card.training.items() if key != "data_sha256"}
    bare = card.model_copy(update={"training": notes}).with_model_id()
    model = register(api, json.loads(bare.to_json())).json()
    assert model["fingerprint_source"] == "card"
    assert model["data_fingerprint"].startswith("sha256:")


def test_only_admins_register_and_activate(api: Api, trained: TrainingResult) -> None:
    response = api.client.post(
        "/v1/risk/models", json={"card": card_of(trained)}, headers=api.headers("app")
    )
    assert response.status_code == 403
    register(api, card_of(trained))
    refused = api.client.post(
        "/v1/risk/models/1/activations",
        json={"product_code": PRODUCT},
        headers=api.headers("auditor"),
    )
    assert refused.status_code == 403


def test_a_policy_naming_an_unregistered_model_is_refused(api: Api) -> None:
    policy = api.get(f"/v1/risk/policies/{PRODUCT}").json()["policy"]
    response = api.client.post(
        f"/v1/risk/policies/{PRODUCT}",
        json={**policy, "model_version": 7},
        headers=api.headers("admin"),
    )
    assert response.status_code == 422
    assert response.json()["code"] == "unknown_model"
    assert activate(api, 7).status_code == 404


def test_publishing_a_policy_with_another_model_joins_the_trail(
    api: Api, trained: TrainingResult
) -> None:
    register(api, card_of(trained))
    policy = api.get(f"/v1/risk/policies/{PRODUCT}").json()["policy"]
    published = api.client.post(
        f"/v1/risk/policies/{PRODUCT}",
        json={**policy, "model_version": 1},
        headers=api.headers("admin"),
    )
    assert published.status_code == 200, published.text
    back = api.client.post(
        f"/v1/risk/policies/{PRODUCT}", json=policy, headers=api.headers("admin")
    )
    trail = api.get("/v1/risk/activations").json()["activations"]
    assert [(a["model_version"], a["previous_model_version"]) for a in trail] == [
        (1, None),
        (None, 1),
    ]
    assert trail[1]["policy_version"] == back.json()["version"]
