"""The API shell: keys and roles, problem+json, request ids, body limit, health."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from pydantic import BaseModel

from node_api.auth import keys as keys_module
from node_api.auth.keys import (
    PRINCIPAL_CACHE_TTL_S,
    PRINCIPAL_REFRESH_AHEAD_S,
    Principal,
    Role,
    create_api_key,
    revoke_api_key,
)
from node_api.http.app import create_app
from node_api.http.authz import AdminDep, cached_principal, verify_token
from node_api.http.services import Services, services_of
from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from node_api.schema.migrate import code_head

PEPPER = Settings().api_key_pepper.get_secret_value().encode()


class Echo(BaseModel):
    amount_fen: int


def _test_router() -> APIRouter:
    router = APIRouter()

    @router.post("/v1/_test/echo")
    def echo(body: Echo, who: AdminDep) -> dict[str, object]:
        return {"amount_fen": body.amount_fen, "role": who.role.value}

    return router


@pytest.fixture
def client(database: Database, tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(Settings(data_dir=tmp_path, max_body_bytes=1024), database=database)
    app.include_router(_test_router())
    with TestClient(app) as test_client:
        yield test_client


def _key(database: Database, role: Role, partner_id: int | None = None) -> str:
    with database.session() as session:
        return create_api_key(session, role, pepper=PEPPER, partner_id=partner_id)


def test_health_reports_database_backend_and_migration_head(
    client: TestClient, database: Database
) -> None:
    body = client.get("/v1/health").json()
    assert body["database"] == {
        "backend": database.backend,
        "migration_head": code_head(database.url),
    }
    assert body["chain"]["rpc"] == "not configured"


def test_request_without_key_gets_401_problem(client: TestClient) -> None:
    response = client.post("/v1/_test/echo", json={"amount_fen": 1})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "unauthenticated"


def test_bad_key_gets_401_and_wrong_role_gets_403(client: TestClient, database: Database) -> None:
    bad = client.post(
        "/v1/_test/echo", json={"amount_fen": 1}, headers={"Authorization": "Bearer cn_x_y"}
    )
    assert bad.status_code == 401
    auditor = _key(database, Role.AUDITOR)
    forbidden = client.post(
        "/v1/_test/echo", json={"amount_fen": 1}, headers={"Authorization": f"Bearer {auditor}"}
    )
    assert forbidden.status_code == 403
    assert forbidden.json()["code"] == "forbidden"


def test_valid_key_passes_and_revoked_key_fails_on_a_fresh_app(
    client: TestClient, database: Database, tmp_path: Path
) -> None:
    admin = _key(database, Role.LENDER_ADMIN)
    ok = client.post(
        "/v1/_test/echo", json={"amount_fen": 5}, headers={"Authorization": f"Bearer {admin}"}
    )
    assert ok.json() == {"amount_fen": 5, "role": "lender_admin"}
    with database.session() as session:
        assert revoke_api_key(session, admin.split("_")[1])
    fresh = create_app(Settings(data_dir=tmp_path), database=database)
    fresh.include_router(_test_router())
    response = TestClient(fresh).post(
        "/v1/_test/echo", json={"amount_fen": 5}, headers={"Authorization": f"Bearer {admin}"}
    )
    assert response.status_code == 401


def test_key_secret_is_stored_only_as_a_hash(database: Database) -> None:
    key = _key(database, Role.AUDITOR)
    secret = key.split("_", 2)[2]
    with database.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT secret_hash FROM api_key").fetchall()
    assert all(secret not in row[0] for row in rows)


def test_invalid_body_names_the_field(client: TestClient, database: Database) -> None:
    admin = _key(database, Role.LENDER_ADMIN)
    response = client.post(
        "/v1/_test/echo", json={"amount_fen": "many"}, headers={"Authorization": f"Bearer {admin}"}
    )
    assert response.status_code == 422
    assert response.json()["field"] == "amount_fen"


def test_malformed_json_is_400_and_oversized_body_is_413(
    client: TestClient, database: Database
) -> None:
    admin = _key(database, Role.LENDER_ADMIN)
    headers = {"Authorization": f"Bearer {admin}", "Content-Type": "application/json"}
    malformed = client.post("/v1/_test/echo", content=b"{not json", headers=headers)
    assert malformed.status_code == 400
    huge = client.post("/v1/_test/echo", content=b"x" * 5000, headers=headers)
    assert huge.status_code == 413
    assert huge.json()["code"] == "body_too_large"


def test_a_model_card_upload_has_its_own_body_limit(client: TestClient) -> None:
    # 5,000 bytes: over this app's 1,024-byte limit, far under the model upload's.
    card = client.post("/v1/risk/models", content=b"x" * 5000)
    assert card.status_code != 413 and card.json()["code"] != "body_too_large"
    business = client.post("/v1/applications", content=b"x" * 5000)
    assert business.status_code == 413


def test_request_id_is_echoed_or_made(client: TestClient) -> None:
    assert (
        client.get("/v1/health", headers={"X-Request-ID": "abc123"}).headers["x-request-id"]
        == "abc123"
    )
    assert len(client.get("/v1/health").headers["x-request-id"]) == 16


def test_partner_key_requires_partner_id(database: Database) -> None:
    from node_api.kernel.errors import CreditNetValueError

    with pytest.raises(CreditNetValueError), database.session() as session:
        create_api_key(session, Role.PARTNER, pepper=PEPPER)


class _Clock:
    """The principal cache's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


async def _look_up_and_wait_for_refresh(services: Services, token: str) -> Principal | None:
    """`cached_principal` on an event loop, then wait until a refresh it started ended."""
    principal = cached_principal(services, token)
    for _ in range(500):
        if not services.principals.is_refreshing(token):
            break
        await asyncio.sleep(0.01)
    return principal


def _cached_admin_key(
    client: TestClient, database: Database, monkeypatch: pytest.MonkeyPatch
) -> tuple[_Clock, Services, str]:
    """An admin key verified once (cached until the clock's 1,030), the cache's clock."""
    clock = _Clock()
    monkeypatch.setattr(keys_module, "_monotonic", clock)
    services = services_of(client.app)
    admin = _key(database, Role.LENDER_ADMIN)
    verify_token(services, admin)
    return clock, services, admin


def test_a_key_in_use_is_verified_again_before_its_cache_entry_expires(
    client: TestClient, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock, services, admin = _cached_admin_key(client, database, monkeypatch)
    clock.now += PRINCIPAL_CACHE_TTL_S - PRINCIPAL_REFRESH_AHEAD_S / 2  # due, still valid
    assert asyncio.run(_look_up_and_wait_for_refresh(services, admin)) is not None
    clock.now += PRINCIPAL_REFRESH_AHEAD_S  # past the first entry's expiry
    principal = services.principals.get(admin)
    assert principal is not None and principal.role is Role.LENDER_ADMIN  # no miss, no lapse


def test_a_key_revoked_elsewhere_drops_out_of_the_cache_at_its_refresh(
    client: TestClient, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock, services, admin = _cached_admin_key(client, database, monkeypatch)
    with database.session() as session:  # revoked by another node: this cache still has it
        assert revoke_api_key(session, admin.split("_")[1])
    clock.now += 1
    assert asyncio.run(_look_up_and_wait_for_refresh(services, admin)) is not None  # not due
    assert services.principals.get(admin) is not None
    clock.now += PRINCIPAL_CACHE_TTL_S - PRINCIPAL_REFRESH_AHEAD_S  # due: verified again
    asyncio.run(_look_up_and_wait_for_refresh(services, admin))
    assert services.principals.get(admin) is None
    clock.now += PRINCIPAL_CACHE_TTL_S
    response = client.post(
        "/v1/_test/echo", json={"amount_fen": 5}, headers={"Authorization": f"Bearer {admin}"}
    )
    assert response.status_code == 401
