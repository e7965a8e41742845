"""The collections API on both databases: strategies, templates, the contact registry,
queues and cases, an idempotent contact attempt, a conduct refusal as problem+json,
promises, a hardship plan and its approval, and the report per arm."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from node_api.auth.keys import Role, create_api_key
from node_api.collections.strategy import DEFAULT_STRATEGY
from node_api.http.app import create_app
from node_api.http.routes import collections
from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from node_api.ledger.business_date import set_business_date
from node_api.lending.core.context import LendingCaches
from tests.integration.collections.helpers import BORROWER_PHONE, open_past_due_line

PEPPER = Settings().api_key_pepper.get_secret_value().encode()
_keys = itertools.count()


class Api:
    """A client with an admin, an agent (app) and an auditor key; remembers every body."""

    def __init__(self, client: TestClient, database: Database) -> None:
        self.client = client
        self.texts: list[str] = []
        with database.session() as session:
            self.tokens = {
                role: create_api_key(session, role, pepper=PEPPER)
                for role in (Role.LENDER_ADMIN, Role.LENDER_APP, Role.AUDITOR)
            }

    def post(self, path: str, body: Any = None, role: Role = Role.LENDER_APP, key: str = "") -> Any:
        headers = {
            "Authorization": f"Bearer {self.tokens[role]}",
            "Idempotency-Key": key or f"k-{next(_keys)}",
        }
        response = self.client.post(path, json=body, headers=headers)
        self.texts.append(response.text)
        return response

    def get(self, path: str, role: Role = Role.LENDER_APP, **params: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"}
        response = self.client.get(path, headers=headers, params=params)
        assert response.status_code == 200, response.text
        self.texts.append(response.text)
        return response.json()


@pytest.fixture
def api(node: Database, tmp_path: Path) -> Iterator[Api]:
    app = create_app(Settings(data_dir=tmp_path), database=node)
    with TestClient(app) as client:
        yield Api(client, node)


def _created(response: Any, status: int = 201) -> Any:
    assert response.status_code == status, response.text
    return response.json()


@pytest.fixture
def case(api: Api, node: Database, caches: LendingCaches) -> dict[str, Any]:
    """An M2 case opened over the API, its borrower's number registered, and an approved
    SMS template."""
    with node.engine.begin() as conn:
        line_id = open_past_due_line(conn, caches, "cust-api", 45)
    template_id = _configure(api)
    contact = _created(api.post(
        f"/v1/collections/lines/{line_id}/contacts", {"party": "borrower", "phone": BORROWER_PHONE}
    ))  # fmt: skip
    assert contact["address_masked"] == "138****8000"
    refreshed = _created(api.post("/v1/collections/refresh", {}, Role.LENDER_ADMIN), 200)
    assert (refreshed["cases_opened"], refreshed["open_cases"]) == (1, 1)
    assert api.get("/v1/collections/queues") == [
        {"queue": "m2-calls", "channel": "call", "cases": 1, "outstanding_fen": 0}
    ]
    (opened,) = api.get("/v1/collections/cases", queue="m2-calls")
    return {
        "path": f"/v1/collections/cases/{opened['id']}",
        "id": opened["id"],
        "contact": contact,
        "attempt": {
            "party": "borrower", "channel": "sms", "template_id": template_id,
            "contacted_at": "2025-04-10T10:00:00+08:00", "note": "First reminder.",
        },
    }  # fmt: skip


def test_a_conduct_breach_is_a_409_problem_naming_the_rule(api: Api, case: dict[str, Any]) -> None:
    path = f"{case['path']}/contact-attempts"
    at_nine = {**case["attempt"], "contacted_at": "2025-04-10T21:00:00+08:00"}
    late = api.post(path, at_nine, key="late-1")
    assert late.status_code == 409
    assert late.headers["content-type"] == "application/problem+json"
    problem = late.json()
    assert (problem["code"], problem["rule"], problem["field"]) == (
        "contact_outside_hours", "contact_outside_hours", "contacted_at",
    )  # fmt: skip
    assert api.post(path, at_nine, key="late-1").json() == problem  # replayed as refused
    stranger = api.post(path, {**case["attempt"], "party": "employer"})
    assert (stranger.status_code, stranger.json()["code"]) == (409, "contact_party_not_allowed")
    assert api.get(case["path"])["attempts"] == []


def test_a_case_is_worked_end_to_end_over_the_api(
    api: Api, node: Database, case: dict[str, Any]
) -> None:
    admin, case_path, attempt_body = Role.LENDER_ADMIN, case["path"], case["attempt"]
    first = api.post(f"{case_path}/contact-attempts", attempt_body, key="attempt-1")
    replay = api.post(f"{case_path}/contact-attempts", attempt_body, key="attempt-1")
    assert first.status_code == replay.status_code == 201
    assert replay.json() == first.json() and replay.headers["idempotent-replayed"] == "true"
    attempt = first.json()
    assert (attempt["outcome"], attempt["delivery"]) == ("queued", "queued")
    assert "note" not in attempt  # kept for replays: no free text

    promise = _created(api.post(
        f"{case_path}/promises",
        {"amount_fen": 5_000, "due_on": "2025-04-15", "attempt_id": attempt["id"]},
    ))  # fmt: skip
    assert promise["status"] == "pending"

    plan = _created(api.post(f"{case_path}/hardship-plans", {
        "kind": "payment_holiday", "term_months": 2, "rate_bps": 0, "principal_fen": 50_000,
        "reason_code": "hospital",
    }))  # fmt: skip
    assert (plan["status"], plan["effective_annual_bps"]) == ("requested", 0)
    decided = _created(api.post(
        f"/v1/collections/hardship-plans/{plan['id']}/decision",
        {"approve": True, "reason": "documents-ok"}, admin,
    ), 200)  # fmt: skip
    assert decided["status"] == "approved"

    detail = api.get(case_path, role=Role.AUDITOR)
    assert detail["case"]["id"] == case["id"] and detail["contacts"] == [case["contact"]]
    assert [(a["id"], a["note"]) for a in detail["attempts"]] == [
        (attempt["id"], "First reminder.")
    ]
    assert [p["id"] for p in detail["promises"]] == [promise["id"]]
    assert [p["status"] for p in detail["hardship_plans"]] == ["approved"]

    with node.engine.begin() as conn:
        set_business_date(conn, date(2025, 4, 16))  # end of day moved past the due date
    evaluated = _created(api.post("/v1/collections/promises/evaluate", {}, admin), 200)
    assert (evaluated["broken"], evaluated["pending"]) == (1, 0)
    (report,) = api.get("/v1/collections/reports/strategies")
    assert (report["arm"], report["cases"], report["promises_broken"]) == ("champion", 1, 1)
    assert report["promise_kept_rate_bps"] == 0
    assert all(BORROWER_PHONE not in text and "8613800138000" not in text for text in api.texts)


def _configure(api: Api) -> int:
    """Strategy version 1 activated, and an approved SMS template (its id)."""
    admin = Role.LENDER_ADMIN
    strategy = _created(
        api.post("/v1/collections/strategies", {"document": DEFAULT_STRATEGY}, admin)
    )
    assert (strategy["version"], strategy["document_hash"][:7]) == (1, "sha256:")
    activation = _created(
        api.post("/v1/collections/strategies/activations", {"champion_version": 1}, admin)
    )
    assert api.get("/v1/collections/strategies")["activation"] == activation

    draft = _created(api.post("/v1/collections/templates", {
        "code": "m2-sms", "channel": "sms", "party": "borrower",
        "body": "Please pay {past_due_yuan} yuan ({days_past_due} days late).",
    }))  # fmt: skip
    assert draft["status"] == "draft"
    assert api.post(f"/v1/collections/templates/{draft['id']}/approve").status_code == 403
    approved = _created(
        api.post(f"/v1/collections/templates/{draft['id']}/approve", role=admin), 200
    )
    assert approved["status"] == "approved" and approved["approved_by"] != draft["created_by"]
    return int(draft["id"])


def test_every_documented_example_validates_against_its_model() -> None:
    checked = 0
    for route in collections.router.routes:
        assert isinstance(route, APIRoute)
        response = route.responses[route.status_code or 200]["content"]["application/json"]
        TypeAdapter(route.response_model).validate_json(json.dumps(response["example"]))
        checked += 1
        if route.body_field is not None:
            body = route.openapi_extra["requestBody"]["content"]["application/json"]  # type: ignore[index]
            annotation = route.body_field.field_info.annotation
            assert annotation is not None
            TypeAdapter(annotation).validate_json(json.dumps(body["example"]))
            checked += 1
    assert checked >= 28  # 18 routes, 10 of them with a body
