"""Fraud rules firing (and not firing) through HTTP, on SQL history."""

from __future__ import annotations

from typing import Any

from node_api.onboarding.policies import DEFAULT_POLICY
from node_api.risk.fraud_facts import Gender
from tests.integration.onboarding.onboarding_helpers import (
    PRODUCT,
    Api,
    application_body,
    new_applicant,
)


def _codes(response_body: dict[str, Any]) -> list[str]:
    return [hit["code"] for hit in response_body["fraud_hits"]]


def _publish_policy(api: Api, **fraud: Any) -> None:
    policy = DEFAULT_POLICY.model_dump(mode="json")
    policy["fraud"].update(fraud)
    response = api.client.post(
        f"/v1/risk/policies/{PRODUCT}", json=policy, headers=api.headers("admin")
    )
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 1


def test_device_velocity_fires_on_the_application_over_the_hourly_limit(api: Api) -> None:
    _publish_policy(
        api,
        velocity={
            "device": {
                "applications_max_1h": 3,
                "applications_max_24h": 10,
                "applications_max_30d": 20,
            }
        },
        device_shared={"identities_max": 100},
    )
    bodies = [application_body(device_id="shared-phone-1") for _ in range(4)]
    decided = [api.apply(body).json() for body in bodies]
    assert [_codes(body) for body in decided[:3]] == [[], [], []]
    assert [d["decision"] for d in decided[:3]] == ["approved"] * 3
    assert _codes(decided[3]) == ["VELOCITY_DEVICE_1H"]
    assert decided[3]["fraud_hits"][0]["evidence"] == {
        "attribute": "device",
        "window": "1h",
        "applications": 4,
        "applications_max": 3,
    }
    assert decided[3]["decision"] == "review"
    assert decided[3]["reason_codes"][0] == "VELOCITY_DEVICE_1H"


def test_distinct_devices_and_phones_fire_no_rule(api: Api) -> None:
    decided = [api.apply(application_body(ip=f"198.51.100.{n}")).json() for n in range(6)]
    assert [_codes(body) for body in decided] == [[]] * 6


def test_a_device_shared_by_too_many_identities_is_flagged(api: Api) -> None:
    decided = [api.apply(application_body(device_id="farm-device")).json() for _ in range(4)]
    assert [_codes(body) for body in decided[:3]] == [[], [], []]
    assert _codes(decided[3]) == ["DEVICE_SHARED"]
    assert decided[3]["fraud_hits"][0]["evidence"]["identities"] == 4


def test_a_ring_of_applications_chained_through_shared_devices_is_detected(api: Api) -> None:
    """I1-d1, I1-d2, I2-d2, I2-d3, ... I5-d5: no device serves more than two people,
    yet all five identities form one component."""
    people = [new_applicant() for _ in range(5)]
    last: dict[str, Any] = {}
    for index, person in enumerate(people):
        ip = f"192.0.2.{index}"
        last = api.apply(application_body(person, device_id=f"ring-{index}", ip=ip)).json()
        if index < len(people) - 1:
            assert "FRAUD_RING" not in _codes(last)
            again = application_body(person, device_id=f"ring-{index + 1}", ip=ip)
            assert api.apply(again).status_code == 201
    assert _codes(last) == ["FRAUD_RING"]
    assert last["fraud_hits"][0]["evidence"] == {"identities": 5, "identities_min": 5}
    assert last["decision"] == "review"
    view = api.get(f"/v1/applications/{last['application_id']}").json()
    assert view["fraud_signals"]["ring_identities"] == 5


def test_a_blacklisted_device_declines_the_application(api: Api) -> None:
    listed = api.client.post(
        "/v1/risk/blacklist",
        json={"kind": "device", "values": ["stolen-device"], "reason_code": "CHARGEBACK"},
        headers=api.headers("admin"),
    )
    assert listed.json() == {"kind": "device", "submitted": 1, "added": 1}
    decided = api.apply(application_body(device_id="Stolen-Device ")).json()
    assert _codes(decided) == ["BLACKLIST_DEVICE"]
    assert decided["decision"] == "declined"
    assert decided["credit_line_id"] is None


def test_declared_gender_and_birth_date_against_the_id_number_are_checked(api: Api) -> None:
    person = new_applicant(2)  # even number: female
    body = application_body(person, gender=Gender.MALE.value, birth_date="1970-01-01")
    decided = api.apply(body).json()
    assert _codes(decided) == ["BIRTHDATE_MISMATCH", "GENDER_MISMATCH"]
    assert decided["decision"] == "review"
