"""Decisions replayed from storage give the stored outcome, whatever happened since."""

from __future__ import annotations

from sqlalchemy import update

from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from node_api.onboarding.context import OnboardingContext
from node_api.onboarding.replay import replay_application
from node_api.onboarding.tables import application_table
from tests.integration.onboarding.onboarding_helpers import (
    BAD_PROFILE,
    BORDERLINE_PROFILE,
    Api,
    application_body,
    new_applicant,
)


def _decide_a_mix(api: Api) -> list[dict[str, object]]:
    """Approved, declined, review, fraud hits, an existing customer, a reviewed one."""
    returning = new_applicant()
    bodies = [
        application_body(returning),
        application_body(profile=BAD_PROFILE),
        application_body(profile=BORDERLINE_PROFILE),
        application_body(profile={}),
        *[application_body(device_id="replay-farm") for _ in range(4)],
        application_body(gender="male", birth_date="1999-09-09"),
        application_body(returning),
    ]
    decided = [api.apply(body).json() for body in bodies]
    api.review(str(decided[2]["application_id"]), "approve")
    return decided


def test_every_decision_replays_to_the_stored_outcome(api: Api, settings: Settings) -> None:
    decided = _decide_a_mix(api)
    outcomes = {str(d["decision"]) for d in decided}
    assert outcomes == {"approved", "declined", "review"}
    assert any(d["existing_customer"] for d in decided)
    assert any(d["fraud_hits"] for d in decided)
    # History moves on after the decisions; replay uses the signals stored with each.
    for _ in range(3):
        api.apply(application_body(device_id="replay-farm"))
    for item in decided:
        replay = api.get(f"/v1/applications/{item['application_id']}/replay", "auditor").json()
        assert replay["matches"] is True, replay
        assert replay["replayed"]["score"] == item["score"]
        if not item["existing_customer"]:
            assert replay["replayed"]["decision"] == item["decision"]
            assert replay["replayed"]["reason_codes"] == item["reason_codes"]
            assert replay["replayed"]["limits"] == item["limits"]


def test_replay_notices_a_stored_decision_that_was_altered(
    api: Api, database: Database, settings: Settings
) -> None:
    decided = api.apply(application_body()).json()
    with database.engine.begin() as conn:
        conn.execute(
            update(application_table)
            .where(application_table.c.id == decided["application_id"])
            .values(limits={**decided["limits"], "total": decided["limits"]["total"] + 100})
        )
    context = OnboardingContext.from_settings(settings)
    with database.engine.connect() as conn:
        result = replay_application(conn, decided["application_id"], context)
    assert not result.matches
    assert result.replayed.record is not None and result.stored.record is not None
    assert result.replayed.record.limits == decided["limits"]
    assert result.stored.record.limits["total"] == decided["limits"]["total"] + 100
