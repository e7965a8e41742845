"""No personal data in any log line or HTTP response, whatever the outcome of a request."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from node_api.kernel.logs import JsonFormatter
from tests.integration.onboarding.onboarding_helpers import (
    BAD_PROFILE,
    BORDERLINE_PROFILE,
    Api,
    application_body,
    new_applicant,
)


def _secrets_of(person: dict[str, str], device_id: str) -> list[str]:
    """Every spelling of the person's data that must never appear."""
    phone = person["phone"]
    return [
        person["name"],
        person["name"].split()[-1],
        person["id_number"],
        person["id_number"][:17],
        phone,
        "+86" + phone,
        phone[3:],
        device_id,
    ]


def _run_applications(api: Api) -> tuple[list[str], list[dict[str, str]]]:
    """Every kind of outcome, including refusals; returns (HTTP texts, persons used).

    The applicants' numbers are far from the helper's sequence, so their phones' last
    eight digits (a secret searched for) are not runs of zeros that a request id's
    counter (`…00000001`) also spells."""
    people = [new_applicant(73_951_846 + 7_919 * k) for k in range(7)]
    texts: list[str] = []

    def record(response: Any) -> Any:
        texts.append(response.text)
        texts.append(str(dict(response.headers)))
        return response

    record(api.client.post(
        "/v1/risk/blacklist",
        json={"kind": "phone", "values": [people[6]["phone"]], "reason_code": "FRAUD"},
        headers=api.headers("admin"),
    ))  # fmt: skip
    profiles: list[dict[str, Any]] = [{}, BAD_PROFILE, BORDERLINE_PROFILE]
    bodies = [
        application_body(people[0], device_id="dev-" + people[0]["phone"]),
        application_body(people[0], device_id="dev-" + people[0]["phone"]),
        application_body(people[1], device_id="dev-" + people[1]["phone"], profile=profiles[1]),
        application_body(people[2], device_id="dev-" + people[2]["phone"], profile=profiles[2]),
        application_body(people[3], device_id="dev-" + people[3]["phone"], gender="female"),
        application_body(people[4], device_id="dev-" + people[4]["phone"], phone="12345"),
        application_body(
            people[5], device_id="dev-" + people[5]["phone"], id_number=people[5]["name"]
        ),
        application_body(people[5], device_id="dev-" + people[5]["phone"], monthly_income_fen="x"),
        application_body(people[6], device_id="dev-" + people[6]["phone"]),
    ]
    decided = [record(api.apply(body)) for body in bodies]
    ids = [r.json()["application_id"] for r in decided if r.status_code == 201]
    for application_id in ids:
        record(api.get(f"/v1/applications/{application_id}"))
        record(api.get(f"/v1/applications/{application_id}/replay"))
    record(api.review(decided[3].json()["application_id"], "approve"))
    record(api.get("/v1/risk/monitoring"))
    return texts, people


def test_no_log_line_or_response_carries_a_name_id_number_phone_or_device(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="sqlalchemy.engine")  # statements and parameters
    texts, people = _run_applications(api)
    formatter = JsonFormatter()
    log_lines = [formatter.format(record) for record in caplog.records]
    assert any("application decided" in line for line in log_lines)
    assert any("INSERT INTO loan_application" in line for line in log_lines), "SQL not captured"
    haystack = "\n".join(log_lines + texts).casefold()
    for person in people:
        for secret in _secrets_of(person, "dev-" + person["phone"]):
            assert secret.casefold() not in haystack
