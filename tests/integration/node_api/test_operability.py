"""Issue 14 over HTTP on both databases: API keys managed by lender_admin, errors that
never 500 (non-ASCII and huge path ids, a problem body with a >64-bit integer, errors
naming their fix), `/metrics` and the access log."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from node_api.auth.keys import Role, create_api_key
from node_api.http.app import create_app
from node_api.kernel.chain import PartnerRole
from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from settlement.partners import register_partner
from tests.unit.lending.samples import revolving_product_data

PEPPER = Settings().api_key_pepper.get_secret_value().encode()
AUDITOR_KEY = {"role": "auditor", "label": "ext audit"}


@pytest.fixture
def api(database: Database, tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    with database.session() as session:
        admin = create_api_key(session, Role.LENDER_ADMIN, pepper=PEPPER)
        app_key = create_api_key(session, Role.LENDER_APP, pepper=PEPPER)
    app = create_app(Settings(data_dir=tmp_path), database=database)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, {"admin": admin, "app": app_key}


def _auth(key: str, idempotency_key: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {key}"}
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    return headers


def test_lender_admin_creates_lists_and_revokes_keys(
    api: tuple[TestClient, dict[str, str]],
) -> None:
    client, keys = api
    created = client.post(
        "/v1/keys",
        json={"role": "auditor", "label": "ext audit"},
        headers=_auth(keys["admin"], "k1"),
    )
    assert created.status_code == 201, created.text
    body = created.json()
    new_key = body["key"]
    assert new_key.startswith(f"cn_{body['key_id']}_")
    assert client.get("/v1/ledger/business-date", headers=_auth(new_key)).status_code == 200

    replay = client.post(
        "/v1/keys",
        json={"role": "auditor", "label": "ext audit"},
        headers=_auth(keys["admin"], "k1"),
    )
    assert replay.status_code == 201
    assert replay.json()["key_id"] == body["key_id"]
    assert replay.json()["key"] is None  # a stored response is never a credential

    listed = client.get("/v1/keys", headers=_auth(keys["admin"])).json()
    assert body["key_id"] in {row["key_id"] for row in listed}
    assert all("key" not in row and "secret_hash" not in row for row in listed)

    revoked = client.post(f"/v1/keys/{body['key_id']}/revoke", headers=_auth(keys["admin"], "r1"))
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_at"] is not None
    # Revoked on this node process at once (not only after the 30 s cache).
    assert client.get("/v1/ledger/business-date", headers=_auth(new_key)).status_code == 401


def test_only_lender_admin_manages_keys(api: tuple[TestClient, dict[str, str]]) -> None:
    client, keys = api
    response = client.post("/v1/keys", json={"role": "auditor"}, headers=_auth(keys["app"], "x"))
    assert response.status_code == 403
    assert client.get("/v1/keys", headers=_auth(keys["app"])).status_code == 403


def test_a_partner_key_needs_a_registered_partner(
    api: tuple[TestClient, dict[str, str]], database: Database
) -> None:
    client, keys = api
    missing = client.post(
        "/v1/keys", json={"role": "partner", "partner_id": 7}, headers=_auth(keys["admin"], "p1")
    )
    assert missing.status_code == 404
    assert "POST /v1/partners" in missing.json()["detail"]
    no_id = client.post("/v1/keys", json={"role": "partner"}, headers=_auth(keys["admin"], "p2"))
    assert no_id.status_code == 422
    with database.engine.begin() as conn:
        partner, _ = register_partner(
            conn,
            ref="bank",
            role=PartnerRole.FUNDER,
            payout_address="0x" + "11" * 20,
            display_name="Bank",
        )
    made = client.post(
        "/v1/keys",
        json={"role": "partner", "partner_id": partner.partner_id},
        headers=_auth(keys["admin"], "p3"),
    )
    assert made.status_code == 201, made.text
    assert made.json()["partner_id"] == partner.partner_id


NON_ASCII_IDS = ["%C2%B2", "%D9%A3", "%EF%BC%91%EF%BC%92", "%E0%A5%A8", "+5", "%201", "1_0"]
HUGE_IDS = ["9" * 20, "1" * 5000]


@pytest.mark.parametrize("raw", NON_ASCII_IDS + HUGE_IDS)
def test_path_ids_in_non_ascii_digits_or_huge_are_refused_not_500(
    api: tuple[TestClient, dict[str, str]], raw: str
) -> None:
    """Regression: `/v1/credit-lines/%C2%B2/purchases` answered 500 (int('²'))."""
    client, keys = api
    for method, path, key in [
        ("GET", f"/v1/credit-lines/{raw}", "admin"),
        ("POST", f"/v1/credit-lines/{raw}/purchases", "app"),
        ("POST", f"/v1/credit-lines/{raw}/drawdowns", "app"),
        ("GET", f"/v1/credit-lines/1/bills/{raw}", "app"),
        ("GET", f"/v1/products/P1/versions/{raw}", "admin"),
    ]:
        response = client.request(
            method, path, headers=_auth(keys[key], f"id-{method}"), json={"amount_fen": 1}
        )
        assert response.status_code in (404, 422), (path, response.status_code, response.text)
        assert response.headers["content-type"] == "application/problem+json"


def test_a_product_whose_cost_exceeds_64_bits_is_a_422_with_the_figure(
    api: tuple[TestClient, dict[str, str]],
) -> None:
    """Regression: the problem body carried a >64-bit int and orjson failed (a 500)."""
    client, keys = api
    data: dict[str, Any] = revolving_product_data()
    data["interest"] = {**data["interest"], "rate": 1_000_000}  # 100% a day
    response = client.post("/v1/products", json=data, headers=_auth(keys["admin"], "big"))
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "product_cost_above_cap"
    assert body["computed_bps"] > 2**64


def test_as_of_without_a_business_date_names_the_fix(
    api: tuple[TestClient, dict[str, str]],
) -> None:
    client, keys = api
    body = {"amount_fen": 100, "currency": "CNY", "channel_id": "app", "merchant_id": "m"}
    # No line exists either; the business date is checked by the domain, so ask the
    # ledger directly through a route that resolves as_of without one.
    from node_api.kernel.errors import CreditNetValueError
    from node_api.ledger.business_date import resolve_as_of

    with pytest.raises(CreditNetValueError) as raised:
        resolve_as_of(None, None)
    assert "POST /v1/ledger/business-date" in raised.value.detail
    assert client.post(
        "/v1/credit-lines/1/purchases", json=body, headers=_auth(keys["app"], "bd")
    ).status_code in (404, 422)


def test_metrics_expose_route_templates_outbox_and_cycles(
    api: tuple[TestClient, dict[str, str]], database: Database
) -> None:
    client, keys = api
    with database.engine.begin() as conn:
        register_partner(  # queues an outbox row (the on-chain registration)
            conn,
            ref="bank",
            role=PartnerRole.FUNDER,
            payout_address="0x" + "22" * 20,
            display_name="Bank",
        )
    client.get("/v1/credit-lines/123456", headers=_auth(keys["admin"]))
    text = client.get("/metrics").text
    assert (
        'creditnet_http_request_duration_seconds_count{method="GET",'
        'route="/v1/credit-lines/{credit_line_id}",status="404"}'
    ) in text
    assert "/v1/credit-lines/123456" not in text
    assert "creditnet_outbox_depth{" in text
    assert "creditnet_outbox_oldest_age_seconds{" in text
    assert "creditnet_settlement_cycles" in text
    assert "creditnet_metrics_scrape_errors" in text
    assert 'part="outbox"' not in text  # every part read


def test_one_json_access_line_per_request_with_the_route_template(
    api: tuple[TestClient, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    client, keys = api
    access = logging.getLogger("creditnet.access")
    level = access.level
    access.setLevel(logging.INFO)
    capsys.readouterr()
    try:
        client.get("/v1/credit-lines/987654", headers=_auth(keys["admin"]))
    finally:
        access.setLevel(level)
    lines = [
        line
        for line in capsys.readouterr().err.splitlines()
        if '"logger":"creditnet.access"' in line
    ]
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["route"] == "/v1/credit-lines/{credit_line_id}"
    assert entry["status"] == 404
    assert entry["method"] == "GET"
    assert "987654" not in json.dumps(entry)
    assert "duration_ms" in entry
