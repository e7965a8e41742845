"""`/v1/products` over HTTP on both databases: publish, immutability, the cost cap, what-if."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from node_api.auth.keys import Role, create_api_key
from node_api.http.app import create_app
from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from node_api.ledger.schema import product_version_table
from tests.unit.lending.samples import installment_product_data

PEPPER = Settings().api_key_pepper.get_secret_value().encode()


@pytest.fixture
def admin(database: Database, tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    with database.session() as session:
        key = create_api_key(session, Role.LENDER_ADMIN, pepper=PEPPER)
    app = create_app(Settings(data_dir=tmp_path), database=database)
    with TestClient(app) as client:
        yield client, {"Authorization": f"Bearer {key}"}


def _publish(client: TestClient, headers: dict[str, str], data: dict[str, Any], key: str) -> Any:
    return client.post("/v1/products", json=data, headers={**headers, "Idempotency-Key": key})


def _count(database: Database) -> int:
    with database.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(product_version_table)).scalar())


def test_publish_lists_and_reads_a_version_with_its_terms_hash(
    admin: tuple[TestClient, dict[str, str]],
) -> None:
    client, headers = admin
    data = installment_product_data()
    published = _publish(client, headers, data, "p-1")
    assert published.status_code == 201, published.text
    body = published.json()
    assert body["terms_hash"].startswith("0x") and len(body["terms_hash"]) == 66
    assert all(c["effective_annual_bps"] <= 2400 for c in body["all_in_costs"])
    listed = client.get("/v1/products", headers=headers).json()
    assert [(p["product_code"], p["version"]) for p in listed] == [
        (data["product_code"], data["version"])
    ]
    one = client.get(
        f"/v1/products/{data['product_code']}/versions/{data['version']}", headers=headers
    ).json()
    assert one["terms_hash"] == body["terms_hash"]


def test_a_published_version_never_changes(
    admin: tuple[TestClient, dict[str, str]], database: Database
) -> None:
    client, headers = admin
    data = installment_product_data()
    assert _publish(client, headers, data, "p-1").status_code == 201
    changed = {**data, "grace_days": data.get("grace_days", 0) + 1}
    response = _publish(client, headers, changed, "p-2")
    assert response.status_code == 409
    assert response.json()["code"] == "product_version_immutable"
    assert _count(database) == 1


def test_a_product_above_the_cost_cap_is_refused_with_the_figure(
    admin: tuple[TestClient, dict[str, str]], database: Database
) -> None:
    client, headers = admin
    data = installment_product_data()
    data["installment"] = {**data["installment"], "rate_bps": 4800}
    response = _publish(client, headers, data, "p-3")
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "product_cost_above_cap"
    assert problem["computed_bps"] > 2400
    assert str(problem["computed_bps"] // 100) in problem["detail"]
    assert _count(database) == 0


def test_what_if_prices_without_booking(
    admin: tuple[TestClient, dict[str, str]], database: Database
) -> None:
    client, headers = admin
    data = installment_product_data()
    assert _publish(client, headers, data, "p-4").status_code == 201
    tenor = data["installment"]["tenors_months"][0]
    quote = client.post(
        f"/v1/products/{data['product_code']}/versions/{data['version']}/what-if",
        json={"amount_fen": 600_000, "tenor_months": tenor, "start_date": "2026-01-10"},
        headers=headers,
    )
    assert quote.status_code == 200, quote.text
    body = quote.json()
    assert sum(i["principal_fen"] for i in body["installments"]) == 600_000
    assert len(body["installments"]) == tenor
    assert _count(database) == 1


def test_what_if_states_payment_due_dates_and_the_cost_on_them(
    admin: tuple[TestClient, dict[str, str]],
) -> None:
    # 12,000.00 yuan over 12 months at 12% (annuity) from 5 January, bill day 10: billed
    # on the 10th, due 20 days later: 30 January, 2 March, 30 March ... 30 December. The
    # payments (1,066.19 × 11, then 1,066.14) fall k months + 25 days after the start,
    # 5 days before a plain monthly schedule's: r = 1.026853% a month, nominal 12.3222%
    # → 1,233 bps, effective 13.0425% → 1,305 bps (rounded up; 12.00% / 12.68% monthly).
    client, headers = admin
    data = installment_product_data()
    assert _publish(client, headers, data, "p-5").status_code == 201
    quote = client.post(
        f"/v1/products/{data['product_code']}/versions/{data['version']}/what-if",
        json={"amount_fen": 1_200_000, "tenor_months": 12, "start_date": "2025-01-05",
              "bill_day": 10},
        headers=headers,
    ).json()  # fmt: skip
    first, second, *_, last = quote["installments"]
    assert (first["bill_date"], first["due_date"]) == ("2025-01-10", "2025-01-30")
    assert (second["bill_date"], second["due_date"]) == ("2025-02-10", "2025-03-02")
    assert (last["due_date"], last["payment_fen"]) == ("2025-12-30", 106_614)
    assert (quote["nominal_annual_bps"], quote["effective_annual_bps"]) == (1_233, 1_305)
    assert (quote["annualization"], quote["annual_cost_bps"]) == ("effective", 1_305)
    assert (quote["cost_cap_bps"], quote["within_cost_cap"]) == (2_400, True)


def test_the_node_can_state_and_cap_the_nominal_rate(database: Database, tmp_path: Path) -> None:
    # CREDITNET_COST_CAP_ANNUALIZATION=nominal: 1.1% a month flat over 6 months costs
    # 22.2869% nominal (24.7104% effective): published under a nominal cap, refused under
    # the default effective one.
    with database.session() as session:
        key = create_api_key(session, Role.LENDER_ADMIN, pepper=PEPPER)
    headers = {"Authorization": f"Bearer {key}"}
    data = installment_product_data()
    data["installment"] = {"tenors_months": [6], "pricing_method": "flat_monthly_fee",
                           "rate_bps": 110}  # fmt: skip
    data["limit_fen_min"] = data["limit_fen_max"] = 600_000
    nominal = Settings(data_dir=tmp_path, cost_cap_annualization="nominal")
    with TestClient(create_app(nominal, database=database)) as client:
        assert _publish(client, headers, {**data, "version": 2}, "n-1").status_code == 201
        quote = client.post(
            f"/v1/products/{data['product_code']}/versions/2/what-if",
            json={"amount_fen": 600_000, "tenor_months": 6, "start_date": "2025-01-05",
                  "bill_day": 5},
            headers=headers,
        ).json()  # fmt: skip
        assert quote["annualization"] == "nominal"
        assert quote["annual_cost_bps"] == quote["nominal_annual_bps"]
    with TestClient(create_app(Settings(data_dir=tmp_path), database=database)) as client:
        refused = _publish(client, headers, {**data, "version": 3}, "e-1")
        assert (refused.status_code, refused.json()["annualization"]) == (422, "effective")
