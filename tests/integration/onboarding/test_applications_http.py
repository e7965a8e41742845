"""`POST /v1/applications` end to end: approve, decline, review, dedupe, idempotency."""

from __future__ import annotations

from eth_hash.auto import keccak
from sqlalchemy import select

from node_api.kernel.db import Database
from node_api.kernel.outbox_table import OUTBOX_TABLE
from node_api.lending.lines import fetch_line
from node_api.lending.products import parse_product_terms, terms_hash_hex
from node_api.onboarding.policies import compute_chain_product_code
from node_api.onboarding.provenance import fetch_agreement_terms, parse_terms_document
from node_api.onboarding.tables import application_table
from node_api.risk.scorecard import Scorecard
from tests.integration.onboarding.onboarding_helpers import (
    BAD_PROFILE,
    BORDERLINE_PROFILE,
    PRODUCT,
    Api,
    application_body,
    count_rows,
    new_applicant,
    product_data,
)


def _outbox_payloads(database: Database) -> list[dict[str, object]]:
    with database.engine.connect() as conn:
        return [dict(row) for row in conn.execute(select(OUTBOX_TABLE.c.payload)).scalars()]


def _agreement_terms_hash(database: Database, application_id: str) -> str:
    """keccak256 of the agreement's stored version-2 terms document (decision provenance)."""
    with database.engine.connect() as conn:
        stored = fetch_agreement_terms(conn, application_id)
    assert stored is not None
    document = parse_terms_document(stored.document)
    assert document is not None
    assert document.product_terms_hash == terms_hash_hex(parse_product_terms(product_data()))
    assert document.decision.model_id == Scorecard.load_packaged("german").model_id
    return "0x" + keccak(stored.document.encode("ascii")).hex()


def test_approved_application_opens_the_line_at_every_level_and_enqueues_the_agreement(
    api: Api, database: Database
) -> None:
    response = api.apply(application_body())
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["decision"] == "approved"
    assert body["score"] == 620
    # 15,000 yuan income x 4 (top band), capped by the band's 100,000 yuan and the
    # product's 50,000 yuan maximum at the product level only.
    assert body["limits"] == {
        "total": 6_000_000,
        "total/cash": 1_800_000,
        "total/purchase": 6_000_000,
        f"total/purchase/{PRODUCT}": 5_000_000,
    }
    with database.engine.connect() as conn:
        line = fetch_line(conn, body["credit_line_id"])
    assert {node.path: node.limit_fen for node in line.nodes} == body["limits"]
    [payload] = _outbox_payloads(database)
    assert payload["agreement_id"] == body["agreement_id"]
    assert payload["terms_hash"] != terms_hash_hex(parse_product_terms(product_data()))
    assert payload["terms_hash"] == _agreement_terms_hash(database, body["application_id"])
    assert payload["limit_fen"] == 6_000_000
    assert payload["product_code"] == compute_chain_product_code(PRODUCT)
    assert payload["apr_bps"] == 1825  # 500 ppm a day x 365
    assert payload["opened_at"] == 1_751_241_600  # 2025-06-30T00:00:00Z
    assert len(str(payload["borrower_ref"])) == 66


def test_low_score_is_declined_with_reason_codes_and_opens_nothing(
    api: Api, database: Database
) -> None:
    body = api.apply(application_body(profile=BAD_PROFILE)).json()
    assert body["decision"] == "declined"
    assert body["reason_codes"][0] == "SCORE_BELOW_CUTOFF"
    assert body["reason_codes"][1:] == [reason["code"] for reason in body["score_reasons"]]
    assert set(body["limits"].values()) == {0}
    assert body["credit_line_id"] is None and body["agreement_id"] is None
    assert _outbox_payloads(database) == []


def test_borderline_score_goes_to_review_and_an_admin_approval_opens_the_line(
    api: Api, database: Database
) -> None:
    decided = api.apply(application_body(profile=BORDERLINE_PROFILE)).json()
    assert decided["decision"] == "review"
    assert decided["reason_codes"][0] == "SCORE_BORDERLINE"
    assert decided["credit_line_id"] is None
    assert _outbox_payloads(database) == []
    reviewed = api.review(decided["application_id"], "approve", "INCOME_VERIFIED")
    assert reviewed.status_code == 200, reviewed.text
    view = reviewed.json()
    assert view["status"] == "approved" and view["decision"] == "review"
    assert view["review"]["reason_code"] == "INCOME_VERIFIED"
    with database.engine.connect() as conn:
        line = fetch_line(conn, view["credit_line_id"])
    assert {node.path: node.limit_fen for node in line.nodes} == decided["limits"]
    assert [p["agreement_id"] for p in _outbox_payloads(database)] == [view["agreement_id"]]
    again = api.review(decided["application_id"], "decline")
    assert again.status_code == 409
    assert again.json()["code"] == "application_not_in_review"


def test_review_decline_opens_nothing(api: Api, database: Database) -> None:
    decided = api.apply(application_body(profile=BORDERLINE_PROFILE)).json()
    view = api.review(decided["application_id"], "decline", "INCOME_UNVERIFIED").json()
    assert view["status"] == "declined" and view["credit_line_id"] is None
    assert _outbox_payloads(database) == []


def test_existing_customer_gets_the_existing_line_and_no_second_agreement(
    api: Api, database: Database
) -> None:
    applicant = new_applicant()
    first = api.apply(application_body(applicant)).json()
    second = api.apply(application_body(applicant, monthly_income_fen=9_000_000)).json()
    assert second["existing_customer"] is True
    assert second["reason_codes"] == ["EXISTING_CUSTOMER"]
    assert second["decision"] == "approved"
    assert second["credit_line_id"] == first["credit_line_id"]
    assert second["agreement_id"] == first["agreement_id"]
    assert second["limits"] == first["limits"]
    assert len(_outbox_payloads(database)) == 1


def test_declined_applicant_may_apply_again_as_the_same_customer(
    api: Api, database: Database
) -> None:
    applicant = new_applicant()
    first = api.apply(application_body(applicant, profile=BAD_PROFILE)).json()
    second = api.apply(application_body(applicant)).json()
    assert (first["decision"], second["decision"]) == ("declined", "approved")
    assert second["existing_customer"] is False
    with database.engine.connect() as conn:
        customers = conn.execute(
            select(application_table.c.customer_id).where(
                application_table.c.id.in_([first["application_id"], second["application_id"]])
            )
        ).scalars()
        assert len(set(customers)) == 1


def test_replayed_request_returns_the_first_response_and_stores_nothing_new(
    api: Api, database: Database
) -> None:
    body = application_body()
    first = api.apply(body, key="apply-once")
    with database.engine.connect() as conn:
        before = count_rows(conn)
    replay = api.apply(body, key="apply-once")
    assert replay.status_code == 201
    assert replay.json() == first.json()
    assert replay.headers["Idempotent-Replayed"] == "true"
    with database.engine.connect() as conn:
        assert count_rows(conn) == before
    changed = api.apply({**body, "monthly_income_fen": 1}, key="apply-once")
    assert changed.status_code == 409
    assert changed.json()["code"] == "idempotency_key_reused"


def test_response_reports_where_time_went(api: Api) -> None:
    response = api.apply(application_body())
    phases = {item.split(";")[0] for item in response.headers["Server-Timing"].split(", ")}
    assert {"prepare", "dedupe", "fraud", "line", "store", "commit"} <= phases


def test_admin_view_explains_the_decision(api: Api) -> None:
    decided = api.apply(application_body(profile=BORDERLINE_PROFILE)).json()
    view = api.get(f"/v1/applications/{decided['application_id']}").json()
    assert view["decision"] == view["status"] == "review"
    assert view["score"] == decided["score"]
    assert view["model_id"] == decided["model_id"]
    assert view["score_detail"]["reasons"] == decided["score_reasons"]
    assert view["fraud_signals"]["ring_identities"] == 1
    assert view["policy_version"] == 1
    app_view = api.get(f"/v1/applications/{decided['application_id']}", "app").json()
    assert app_view["decision"] == "review" and app_view["score_detail"] is None
    assert api.get(f"/v1/applications/{decided['application_id']}", "auditor").status_code == 403
    assert api.get("/v1/applications/" + "0" * 32).status_code == 404
