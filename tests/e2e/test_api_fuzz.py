"""Schemathesis against the app's own OpenAPI schema: every route, with valid keys.

Any 5xx or a response that violates the declared schema fails the run, so each route
added later is fuzzed too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import given
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from node_api.auth.keys import Role, create_api_key
from node_api.http.app import create_app
from node_api.kernel.config import Settings
from node_api.kernel.db import Database

PEPPER = Settings().node_secret.get_secret_value().encode()


@pytest.fixture
def fuzz_keys(database: Database) -> dict[str, str]:
    with database.session() as session:
        return {
            "admin": create_api_key(session, Role.LENDER_ADMIN, pepper=PEPPER),
            "app": create_api_key(session, Role.LENDER_APP, pepper=PEPPER),
            "auditor": create_api_key(session, Role.AUDITOR, pepper=PEPPER),
            "partner": create_api_key(session, Role.PARTNER, pepper=PEPPER, partner_id=1),
        }


def _key_for(path: str, keys: dict[str, str]) -> str:
    if path.startswith("/v1/partner"):
        return keys["partner"]
    if path.startswith("/v1/audit"):
        return keys["auditor"]
    if "/purchases" in path or "/repayments" in path or "/drawdowns" in path:
        return keys["app"]
    return keys["admin"]


def test_no_route_answers_5xx_or_breaks_its_schema(
    database: Database, tmp_path: Path, fuzz_keys: dict[str, str]
) -> None:
    app = create_app(Settings(data_dir=tmp_path), database=database)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations, "the schema lists no operation"
    for operation in operations:
        _fuzz(operation, {"Authorization": f"Bearer {_key_for(operation.path, fuzz_keys)}"})


def _fuzz(operation: Any, headers: dict[str, str]) -> None:
    @given(case=operation.as_strategy())
    def call(case: schemathesis.Case) -> None:
        case.call_and_validate(
            headers=headers, checks=[not_a_server_error, response_schema_conformance]
        )

    call()


def test_the_fuzzer_catches_a_route_that_fails_with_5xx(database: Database, tmp_path: Path) -> None:
    from fastapi import APIRouter

    broken = APIRouter()

    @broken.get("/v1/_broken")
    def explode(n: int) -> dict[str, int]:
        return {"n": 100 // (n - n)}

    app = create_app(Settings(data_dir=tmp_path), database=database)
    app.include_router(broken)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operation = next(
        result.ok() for result in schema.get_all_operations() if result.ok().path == "/v1/_broken"
    )
    with pytest.raises(Exception, match=r"Server error|division"):
        _fuzz(operation, {})
