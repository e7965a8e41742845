"""Refused applications: a 4xx problem+json naming the field, and nothing stored."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from node_api.kernel.db import Database
from node_api.onboarding.identity import compute_check_character, make_resident_id
from node_api.risk.fraud_facts import Gender
from tests.integration.onboarding.onboarding_helpers import (
    GOOD_PROFILE,
    Api,
    application_body,
    count_rows,
    new_applicant,
)

_VALID = new_applicant(9_001)["id_number"]
_BAD_REGION_BODY = "999999" + "19850101" + "123"

IDENTITY_VECTORS = [
    pytest.param(
        {"id_number": _VALID[:17] + ("0" if _VALID[17] != "0" else "1")},
        "id_number",
        "id_number_checksum",
        id="bad-checksum",
    ),
    pytest.param(
        {"id_number": make_resident_id("110101", date(2026, 1, 1), 123, Gender.MALE)},
        "id_number",
        "id_number_birth_date_future",
        id="future-birth-date",
    ),
    pytest.param(
        {"id_number": _BAD_REGION_BODY + compute_check_character(_BAD_REGION_BODY)},
        "id_number",
        "id_number_region",
        id="unknown-region",
    ),
    pytest.param(
        {"id_number": "110101850101123"}, "id_number", "id_number_legacy_15_digit", id="15-digit"
    ),
    pytest.param(
        {"id_number": make_resident_id("110101", date(2010, 1, 1), 123, Gender.MALE)},
        "id_number",
        "age_below_minimum",
        id="under-age",
    ),
    pytest.param({"phone": "12345"}, "phone", "phone_invalid", id="short-phone"),
    pytest.param({"phone": "010-62345678"}, "phone", "phone_not_mobile", id="landline"),
    pytest.param({"name": "   "}, "name", "name_empty", id="blank-name"),
]

INPUT_VECTORS = [
    pytest.param({"product_code": "NOPE"}, "product_code", "unknown_product", id="unknown-product"),
    pytest.param({"channel_id": "kiosk"}, "channel_id", "channel_not_eligible", id="channel"),
    pytest.param(
        {"characteristics": {**GOOD_PROFILE, "shoe_size": 42}},
        "characteristics.shoe_size",
        "unknown_characteristic",
        id="unknown-characteristic",
    ),
    pytest.param(
        {"characteristics": {**GOOD_PROFILE, "duration_in_month": "long"}},
        "characteristics.duration_in_month",
        "invalid_value",
        id="characteristic-type",
    ),
    pytest.param(
        {"monthly_income_fen": "1500000"}, "monthly_income_fen", "invalid_request", id="income-str"
    ),
    pytest.param({"monthly_income_fen": -1}, "monthly_income_fen", "invalid_request", id="neg"),
    pytest.param({"gender": "other"}, "gender", "invalid_request", id="gender-value"),
    pytest.param({"birth_date": "1985-02-30"}, "birth_date", "invalid_request", id="birth-date"),
    pytest.param({"id_number": 110101}, "id_number", "invalid_request", id="id-number-int"),
    pytest.param({"unexpected": 1}, "unexpected", "invalid_request", id="extra-field"),
]


def _assert_refused(
    api: Api, database: Database, body: dict[str, Any], field: str, code: str
) -> None:
    with database.engine.connect() as conn:
        before = count_rows(conn)
    response = api.apply(body)
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert (problem["field"], problem["code"]) == (field, code)
    with database.engine.connect() as conn:
        assert count_rows(conn) == before


@pytest.mark.parametrize(("change", "field", "code"), IDENTITY_VECTORS)
def test_RevertWhen_identity_check_fails(
    api: Api, database: Database, change: dict[str, Any], field: str, code: str
) -> None:
    _assert_refused(api, database, {**application_body(), **change}, field, code)


@pytest.mark.parametrize(("change", "field", "code"), INPUT_VECTORS)
def test_RevertWhen_input_is_invalid(
    api: Api, database: Database, change: dict[str, Any], field: str, code: str
) -> None:
    _assert_refused(api, database, {**application_body(), **change}, field, code)


@pytest.mark.parametrize("field", ["product_code", "name", "id_number", "phone", "device_id"])
def test_RevertWhen_a_required_field_is_missing(api: Api, database: Database, field: str) -> None:
    body = application_body()
    del body[field]
    _assert_refused(api, database, body, field, "invalid_request")


def test_RevertWhen_the_idempotency_key_is_missing(api: Api, database: Database) -> None:
    with database.engine.connect() as conn:
        before = count_rows(conn)
    response = api.client.post(
        "/v1/applications",
        json=application_body(),
        headers={"Authorization": f"Bearer {api.keys['app']}"},
    )
    assert response.status_code == 400
    assert response.json()["field"] == "Idempotency-Key"
    with database.engine.connect() as conn:
        assert count_rows(conn) == before


def test_RevertWhen_the_caller_is_an_auditor(api: Api) -> None:
    response = api.client.post(
        "/v1/applications", json=application_body(), headers=api.headers("auditor")
    )
    assert response.status_code == 403


def test_a_refused_key_can_be_retried_once_the_input_is_fixed(api: Api) -> None:
    body = application_body()
    assert api.apply({**body, "phone": "12345"}, key="fix-me").status_code == 422
    assert api.apply(body, key="fix-me").status_code == 201
