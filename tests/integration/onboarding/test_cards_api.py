"""The scorecard's inputs are documented where an integrator looks, and lender_app reads
the decisions (and agreement ids) of applications."""

from __future__ import annotations

from node_api.onboarding.policies import DEFAULT_POLICY
from tests.integration.onboarding.onboarding_helpers import (
    BORDERLINE_PROFILE,
    GOOD_PROFILE,
    PRODUCT,
    Api,
    application_body,
)


def test_active_card_lists_characteristics_and_allowed_values(api: Api) -> None:
    response = api.get(f"/v1/risk/cards/active?product_code={PRODUCT}", "app")
    assert response.status_code == 200, response.text
    card = response.json()
    assert card["card"] == DEFAULT_POLICY.card and card["product_code"] == PRODUCT
    assert card["missing_characteristics_max"] == DEFAULT_POLICY.risk.missing_characteristics_max
    by_name = {item["name"]: item for item in card["characteristics"]}
    assert set(by_name) == set(GOOD_PROFILE)
    assert "no checking account" in by_name["status_of_existing_checking_account"]["allowed_values"]
    assert by_name["duration_in_month"]["kind"] == "numeric"
    assert by_name["duration_in_month"]["numeric_edges"]
    for name, value in GOOD_PROFILE.items():
        if by_name[name]["kind"] == "categorical":
            assert value in by_name[name]["allowed_values"], name


def test_active_card_without_a_product_is_the_default_policys(api: Api) -> None:
    card = api.get("/v1/risk/cards/active", "auditor").json()
    assert card["card"] == DEFAULT_POLICY.card and card["policy_version"] is None


def test_active_card_of_an_unknown_product_is_refused(api: Api) -> None:
    response = api.get("/v1/risk/cards/active?product_code=NOPE", "admin")
    assert response.status_code == 422
    assert response.json()["code"] == "unknown_product"


def test_lender_app_reads_the_decision_and_agreement_but_not_the_examiners_detail(
    api: Api,
) -> None:
    decided = api.apply(application_body()).json()
    assert decided["decision"] == "approved"
    view = api.get(f"/v1/applications/{decided['application_id']}", "app")
    assert view.status_code == 200, view.text
    body = view.json()
    assert body["decision"] == "approved"
    assert body["agreement_id"] == decided["agreement_id"]
    assert body["credit_line_id"] == decided["credit_line_id"]
    assert body["score_detail"] is None and body["fraud_signals"] is None
    assert body["fraud_hits"] is None
    admin_view = api.get(f"/v1/applications/{decided['application_id']}", "admin").json()
    assert admin_view["score_detail"]["reasons"] == decided["score_reasons"]


def test_lender_app_sees_a_review_outcome(api: Api) -> None:
    decided = api.apply(application_body(profile=BORDERLINE_PROFILE)).json()
    assert decided["decision"] == "review"
    api.review(decided["application_id"], "approve")
    body = api.get(f"/v1/applications/{decided['application_id']}", "app").json()
    assert body["status"] == "approved" and body["agreement_id"] is not None
    assert body["review"]["action"] == "approve"
