"""The recovery, compensation, debt-sale and report endpoints on both databases: a
guarantee agreement, a compensation replayed by its idempotency key, recoveries to the
guarantor, refusals as problem+json naming the field (and changing nothing), and the
reports per vintage, per arm and bucket to bucket."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from node_api.auth.keys import Role
from node_api.collections.compensation import Coverage
from node_api.http.app import create_app
from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from node_api.lending.billing_rules import DelinquencyBucket
from node_api.lending.eod.state import update_line_states
from tests.integration.collections.recovery_books import OPENED, PRODUCT, RecoveryBooks
from tests.integration.collections.test_api import Api


@pytest.fixture
def books(database: Database) -> RecoveryBooks:
    books = RecoveryBooks(database)
    books.setup(Coverage.OVERDUE)
    return books


@pytest.fixture
def api(books: RecoveryBooks, tmp_path: Path) -> Iterator[Api]:
    app = create_app(Settings(data_dir=tmp_path), database=books.database)
    with TestClient(app) as client:
        yield Api(client, books.database)


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    return body


def test_a_compensated_line_pays_its_guarantor_back_over_the_api(
    api: Api, books: RecoveryBooks
) -> None:
    line_id = books.open_line("cust-api", 100_000)
    with books.database.engine.begin() as conn:  # at the default compensation day
        update_line_states(
            conn, OPENED,
            {line_id: {"days_past_due": 90, "bucket": DelinquencyBucket.M3.value}},
            ["days_past_due", "bucket"],
        )  # fmt: skip
    terms = {"product_code": PRODUCT, "guarantor_ref": "guard", "coverage": "balance"}
    set_terms = api.post("/v1/collections/guarantees", terms, Role.LENDER_ADMIN)
    assert set_terms.status_code == 200, set_terms.text
    assert api.get("/v1/collections/guarantees")[0]["coverage"] == "balance"

    path = f"/v1/credit-lines/{line_id}/compensations"
    first = api.post(path, {}, Role.LENDER_ADMIN, key="comp-1")
    assert first.status_code == 201, first.text
    assert first.json()["amount_fen"] == 100_000 and first.json()["coverage"] == "balance"
    replay = api.post(path, {}, Role.LENDER_ADMIN, key="comp-1")
    assert replay.status_code == 201 and replay.json() == first.json()
    assert len(api.get("/v1/collections/compensations", credit_line_id=line_id)) == 1
    problem = _problem(api.post(path, {}, Role.LENDER_ADMIN), 409)
    assert problem["code"] == "nothing_to_compensate"

    recoveries = f"/v1/credit-lines/{line_id}/recoveries"
    recovered = api.post(recoveries, {"amount_fen": 30_000, "payment_ref": "tx-1"})
    assert recovered.status_code == 201, recovered.text
    assert (recovered.json()["guarantor_fen"], recovered.json()["shared_fen"]) == (30_000, 0)
    too_much = _problem(api.post(recoveries, {"amount_fen": 70_001}), 422)
    assert (too_much["field"], too_much["code"]) == ("amount_fen", "invalid_value")
    zero = _problem(api.post(recoveries, {"amount_fen": 0}), 422)
    assert zero["field"] == "amount_fen"
    state = api.get(recoveries)
    assert state["recoverable"]["claims_fen"] == {"guard": 70_000}
    assert state["recoverable"]["recoverable_fen"] == 70_000
    assert [r["amount_fen"] for r in state["recoveries"]] == [30_000]
    missing = api.client.get(
        "/v1/credit-lines/999999/recoveries",
        headers={"Authorization": f"Bearer {api.tokens[Role.LENDER_APP]}"},
    )
    assert _problem(missing, 404)["field"] == "credit_line_id"

    (vintage,) = api.get("/v1/collections/reports/vintages")
    assert vintage["vintage"] == "2025-03" and vintage["lines"] == 1
    assert vintage["losses"]["compensated_fen"] == 100_000
    assert vintage["losses"]["guarantor_recovered_fen"] == 30_000
    assert vintage["guarantor_recovery_rate_bps"] == 3_000  # 30,000 / 100,000
    rates = api.get("/v1/collections/reports/roll-rates")
    assert [rate["from_bucket"] for rate in rates] == ["M1", "M2", "M3", "M4", "M5", "M6"]
    assert all(api.texts) and not any("138" in text for text in api.texts)


def test_RevertWhen_the_guarantee_or_the_sale_is_malformed_nothing_changes(
    api: Api, books: RecoveryBooks
) -> None:
    not_guarantor = {"product_code": PRODUCT, "guarantor_ref": "bank-a", "coverage": "overdue"}
    problem = _problem(
        api.post("/v1/collections/guarantees", not_guarantor, Role.LENDER_ADMIN), 422
    )
    assert problem["field"] == "guarantor_ref"
    assert api.get("/v1/collections/guarantees")[0]["guarantor_ref"] == "guard"
    line_id = books.open_line("cust-sale", 10_000)
    sale = {"buyer_ref": "app", "credit_line_ids": [line_id], "price_fen": 100}
    problem = _problem(api.post("/v1/collections/debt-sales", sale, Role.LENDER_ADMIN), 409)
    assert (problem["code"], problem["field"]) == ("not_charged_off", "credit_line_ids")
    twice = {**sale, "credit_line_ids": [line_id, line_id]}
    problem = _problem(api.post("/v1/collections/debt-sales", twice, Role.LENDER_ADMIN), 422)
    assert problem["field"] == "credit_line_ids"
    agent = _problem(api.post("/v1/collections/debt-sales", sale), 403)
    assert agent["status"] == 403
    assert api.get("/v1/collections/debt-sales") == []
