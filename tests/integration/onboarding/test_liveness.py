"""Liveness and face match through the API: a provider-signed result over the node's nonce
is one more rule of the decision; a forged, foreign, unknown or replayed result is
refused and changes nothing."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node_api.kernel.db import Database
from node_api.onboarding.liveness import issue_challenge
from node_api.onboarding.liveness_provider import TEST_PROVIDER_ID, EmbeddedLivenessProvider
from node_api.onboarding.policies import DEFAULT_POLICY
from tests.integration.onboarding.onboarding_helpers import (
    PRODUCT,
    Api,
    application_body,
    count_rows,
    new_applicant,
)


def _require_liveness(api: Api, face_match_bps_min: int = 8_000) -> None:
    policy = DEFAULT_POLICY.model_dump(mode="json")
    policy["liveness"] = {"face_match_bps_min": face_match_bps_min}
    published = api.client.post(
        f"/v1/risk/policies/{PRODUCT}", json=policy, headers=api.headers("admin")
    )
    assert published.status_code == 200, published.text


def _nonce(api: Api) -> str:
    response = api.client.post("/v1/liveness/challenges", headers=api.headers("app"))
    assert response.status_code == 201, response.text
    nonce: str = response.json()["nonce"]
    return nonce


def _signed(api: Api, applicant: dict[str, str], outcome: str = "pass") -> dict[str, Any]:
    """The embedded test provider's signed result for this applicant over a new nonce."""
    response = api.client.post(
        "/v1/liveness/test-provider/checks",
        json={"nonce": _nonce(api), "id_number": applicant["id_number"], "outcome": outcome},
        headers=api.headers("app"),
    )
    assert response.status_code == 200, response.text
    signed: dict[str, Any] = response.json()
    return signed


def _problem(response: Any, status: int, code: str, field: str) -> None:
    assert response.status_code == status, response.text
    problem = response.json()
    assert problem["code"] == code
    assert problem["field"] == field


def test_a_policy_with_a_liveness_rule_approves_with_a_verified_result_and_replays_it(
    api: Api,
) -> None:
    _require_liveness(api)
    applicant = new_applicant()
    response = api.apply(application_body(applicant, liveness=_signed(api, applicant)))
    assert response.status_code == 201, response.text
    decided = response.json()
    assert decided["decision"] == "approved"
    replay = api.get(f"/v1/applications/{decided['application_id']}/replay").json()
    assert replay["matches"] is True


def test_an_application_without_the_required_result_is_refused_and_stores_nothing(
    api: Api, database: Database
) -> None:
    _require_liveness(api)
    with database.engine.connect() as conn:
        before = count_rows(conn)
    response = api.apply(application_body())
    _problem(response, 422, "liveness_required", "liveness")
    with database.engine.connect() as conn:
        after = count_rows(conn)
    assert {k: v for k, v in after.items() if k != "idempotency_key"} == {
        k: v for k, v in before.items() if k != "idempotency_key"
    }


@pytest.mark.parametrize(
    ("outcome", "reason"), [("not_live", "LIVENESS_FAILED"), ("face_mismatch", "FACE_MATCH_FAILED")]
)
def test_a_failed_check_declines_with_its_reason_and_replays(
    api: Api, outcome: str, reason: str
) -> None:
    _require_liveness(api)
    applicant = new_applicant()
    decided = api.apply(application_body(applicant, liveness=_signed(api, applicant, outcome)))
    assert decided.status_code == 201, decided.text
    body = decided.json()
    assert body["decision"] == "declined"
    assert body["reason_codes"][0] == reason
    assert body["credit_line_id"] is None
    replay = api.get(f"/v1/applications/{body['application_id']}/replay").json()
    assert replay["matches"] is True and replay["replayed"]["reason_codes"][0] == reason


def test_a_replayed_result_is_refused_even_for_the_same_applicant(api: Api) -> None:
    _require_liveness(api)
    applicant = new_applicant()
    signed = _signed(api, applicant)
    first = api.apply(application_body(applicant, liveness=signed))
    assert first.status_code == 201, first.text
    again = api.apply(application_body(applicant, liveness=signed))
    _problem(again, 409, "liveness_replayed", "liveness.result.nonce")


def test_the_same_idempotency_key_answers_the_first_response_without_using_the_nonce_again(
    api: Api,
) -> None:
    applicant = new_applicant()
    body = application_body(applicant, liveness=_signed(api, applicant))
    first = api.apply(body, key="liveness-once")
    second = api.apply(body, key="liveness-once")
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()


def test_a_forged_result_is_refused(api: Api) -> None:
    _require_liveness(api)
    applicant = new_applicant()
    signed = _signed(api, applicant, "face_mismatch")
    signed["result"]["face_match_bps"] = 9_900  # the verdict changed after signing
    _problem(
        api.apply(application_body(applicant, liveness=signed)),
        422,
        "liveness_signature_invalid",
        "liveness.signature",
    )


def test_a_result_signed_by_another_key_in_the_test_providers_name_is_refused(api: Api) -> None:
    applicant = new_applicant()
    impostor = EmbeddedLivenessProvider(key=Ed25519PrivateKey.generate())
    signed = impostor.check(nonce=_nonce(api), id_number=applicant["id_number"])
    liveness = {"result": signed.result.model_dump(mode="json"), "signature": signed.signature}
    assert liveness["result"]["provider_id"] == TEST_PROVIDER_ID
    _problem(
        api.apply(application_body(applicant, liveness=liveness)),
        422,
        "liveness_signature_invalid",
        "liveness.signature",
    )


def test_a_result_from_an_unknown_provider_is_refused(api: Api) -> None:
    applicant = new_applicant()
    signed = _signed(api, applicant)
    signed["result"]["provider_id"] = "someone-else"
    _problem(
        api.apply(application_body(applicant, liveness=signed)),
        422,
        "liveness_provider_unknown",
        "liveness.result.provider_id",
    )


def test_a_result_about_another_applicant_is_refused(api: Api) -> None:
    someone, applicant = new_applicant(), new_applicant()
    _problem(
        api.apply(application_body(applicant, liveness=_signed(api, someone))),
        422,
        "liveness_subject_mismatch",
        "liveness.result.subject_hash",
    )


def test_a_nonce_the_node_never_issued_or_that_expired_is_refused(
    api: Api, database: Database
) -> None:
    applicant = new_applicant()
    provider = EmbeddedLivenessProvider()
    invented = provider.check(nonce="ab" * 16, id_number=applicant["id_number"])
    with database.engine.begin() as conn:
        old = issue_challenge(
            conn, issued_at=datetime.now(UTC) - timedelta(hours=2), ttl_s=600, nonce="cd" * 16
        )
    expired = provider.check(nonce=old.nonce, id_number=applicant["id_number"])
    for signed, code in ((invented, "liveness_nonce_unknown"), (expired, "liveness_expired")):
        liveness = {"result": signed.result.model_dump(mode="json"), "signature": signed.signature}
        _problem(
            api.apply(application_body(applicant, liveness=liveness)),
            422,
            code,
            "liveness.result.nonce",
        )


def test_a_malformed_signature_is_refused_on_its_field(api: Api) -> None:
    applicant = new_applicant()
    signed = _signed(api, applicant)
    signed["signature"] = base64.b64encode(b"short").decode()
    _problem(
        api.apply(application_body(applicant, liveness=signed)),
        422,
        "liveness_signature_invalid",
        "liveness.signature",
    )


def test_the_providers_listing_names_the_embedded_test_provider_in_dev(api: Api) -> None:
    listed = api.get("/v1/liveness/providers").json()["providers"]
    assert [provider["provider_id"] for provider in listed] == [TEST_PROVIDER_ID]
    assert len(base64.b64decode(listed[0]["public_key"])) == 32
