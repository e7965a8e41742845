"""The audit's `provenance.models_active` on agreements decided by a risk team's own
model: passes while the trail had it active, reports it when it was not."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

from node_api.risk.training import TrainingResult
from oracles.audit.provenance import check_provenance
from tests.integration.onboarding.onboarding_helpers import Api, application_body
from tests.integration.onboarding.test_provenance import (
    approve,
    export_books,
    fetch_trail,
    on_chain,
)
from tests.integration.risk.test_model_registry_http import activate, register


def test_agreements_decided_by_the_active_models_pass_and_others_are_reported(
    api: Api, trained: TrainingResult
) -> None:
    first = approve(api)
    registered = register(api, json.loads(trained.card.to_json()), label="slice")
    version = registered.json()["version"]
    assert activate(api, version).status_code == 200
    names = {c.name for c in trained.card.characteristics}
    profile = {k: v for k, v in application_body()["characteristics"].items() if k in names}
    second = approve(api, characteristics=profile)
    assert second["model_id"] == trained.card.model_id
    export, trail = export_books(api), fetch_trail(api)
    result = check_provenance(on_chain(export), export, trail, "0xregistry")
    assert result.passed, result.message
    assert result.message.startswith("2 agreements")

    # The trail as if the model had been activated only after the second decision.
    [(activated_at, model_id)] = trail.activations["PAY1"]
    late = dataclasses.replace(
        trail, activations={"PAY1": [(activated_at + timedelta(days=1), model_id)]}
    )
    result = check_provenance(on_chain(export), export, late, "0xregistry")
    assert not result.passed
    [evidence] = result.evidence
    assert second["agreement_id"] in str(evidence.values["problem"])
    assert evidence.values["model_version"] == version
    assert first["agreement_id"] not in result.message

    # Without the trail the activity cannot be judged, and the message says so.
    unchecked = check_provenance(on_chain(export), export, None, "0xregistry")
    assert unchecked.passed and "not checked against a model trail" in unchecked.message
